/*
 * fuzz_payments_body.c — the payment flow's request reader
 * (payments_parse, src/server/payments.c): any bytes as the body of POST
 * /v1/payments, /v1/payments/decisions and /v1/liquidity, and as the path
 * parameter of the accept and settlement routes, read on a worker as the
 * participant "bankA" (no alias directory or vault open: aliases and
 * tokens resolve to not found, as for values nobody registered).
 *
 * Input layout: byte 0 picks the route; the rest is the body, and its
 * first 40 bytes the path parameter.
 * Properties: never a crash or a leak; a refused request names a status
 * and a code; an accepted payments request holds 1..PAY_BATCH_MAX items,
 * each either refused with a status and code or resolved to a payment id,
 * two position accounts and an amount.
 */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

#define CHECK(e) ((e) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const enum route_id routes[] = {
		R_PAYMENTS_CREATE, R_PAYMENTS_DECIDE, R_PAYMENT_ACCEPT,
		R_LIQUIDITY, R_SETTLE_GET, R_SETTLE_SETTLE, R_LIQUIDITY_GET,
		R_PAYMENTS_INBOX};
	static struct server s; /* no switch open: nothing resolves */
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return 0;
	j->route = routes[data[0] % (sizeof routes / sizeof routes[0])];
	snprintf(j->who, sizeof j->who, "bankA");
	j->role = HT_PKI_ROLE_PARTICIPANT;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	size_t plen = len < 40 ? len : 40;
	char q[24];
	size_t ql = plen < sizeof q - 1 ? plen : sizeof q - 1;
	memcpy(q, body, ql);
	q[ql] = '\0';
	int status = 0;
	const char *code = NULL;
	char msg[256];
	bool ok = payments_parse(&s, j, body, len, body, plen, q, q, q, q,
				 &status, &code, msg, sizeof msg);
	if (!ok) {
		CHECK(status >= 400 && status < 600 && code && *code);
	} else if (j->kind == JOB_PAY_CREATE || j->kind == JOB_PAY_DECIDE) {
		CHECK(j->pay && j->pay_n >= 1 && j->pay_n <= PAY_BATCH_MAX);
		for (size_t i = 0; i < j->pay_n; i++) {
			const struct job_payment *p = &j->pay[i];
			CHECK(p->xfer == -1);
			if (p->code)
				CHECK(p->status >= 400 && p->status < 600);
			else if (j->kind == JOB_PAY_CREATE)
				CHECK(p->id && p->debit && p->credit &&
				      p->debit != p->credit && p->amount);
		}
	}
	job_free(j);
	return 0;
}

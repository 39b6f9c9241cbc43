/*
 * fuzz_api_request.c — the HTTPS API's request decoder: any bytes as a
 * request body for each op a route implies (ht_jsonl_parse_body), and as
 * a request path through the route table (srv_route_find).
 *
 * Input layout: byte 0 picks the op (and the method for the path), the
 * rest is the body; the same rest, cut at its first NUL, is the path.
 * Properties: never a crash or a leak; a refused body leaves the request
 * empty and a problem kind; an accepted one has an op equal to the
 * route's and a count within the limits; a path either matches a route
 * (which then names that method) or answers 404/405.
 */
#include <stdlib.h>
#include <string.h>

#include "huitong/jsonl.h"
#include "srv.h"

#define CHECK(e) ((e) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const enum ht_op ops[] = {
		HT_OP_CREATE_ACCOUNTS, HT_OP_CREATE_TRANSFERS,
		HT_OP_LOOKUP_ACCOUNTS, HT_OP_LOOKUP_TRANSFERS};
	enum ht_op op = ops[data[0] % 4];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	struct ht_request r;
	char err[256];
	enum ht_jsonl_problem problem = 0;
	enum ht_err e = ht_jsonl_parse_body(body, len, op, &r, err, sizeof err,
					    &problem);
	if (e == HT_OK) {
		CHECK(r.op == op);
		CHECK(r.count <= HT_BATCH_EVENTS_MAX);
		CHECK(err[0] == '\0');
		ht_request_free(&r);
	} else {
		CHECK(e == HT_ERR_INVALID || e == HT_ERR_LIMIT ||
		      e == HT_ERR_NOMEM);
		CHECK(r.count == 0 && !r.accounts && !r.transfers && !r.ids);
		CHECK(problem >= HT_JSONL_BAD_REQUEST &&
		      problem <= HT_JSONL_TOO_LARGE);
		CHECK(err[0] != '\0');
	}

	/* the same bytes as a path */
	char path[1024];
	size_t n = strnlen(body, len < sizeof path - 1 ? len : sizeof path - 1);
	memcpy(path, body, n);
	path[n] = '\0';
	const char *method = data[0] & 0x80 ? "POST" : "GET";
	int route = -2;
	int rc = srv_route_find(method, path, &route);
	CHECK(rc == 0 || rc == 404 || rc == 405);
	size_t nr;
	const struct ht_server_route *t = ht_server_routes(&nr);
	if (rc == 0) {
		CHECK(route >= 0 && (size_t)route < nr);
		CHECK(!strcmp(t[route].method, method));
		CHECK(path[0] == '/');
	} else {
		CHECK(route == -1);
	}
	return 0;
}

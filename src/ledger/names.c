/*
 * names.c — the snake_case names of result codes and flags, as they appear
 * in JSON and in docs/ledger.md.
 *
 * Owner: ledger. The names are a public contract (DESIGN.md): extend, never
 * rename.
 */
#include <string.h>

#include "huitong/ledger.h"

static const char *const result_names[HT_R__MAX] = {
	[HT_R_OK] = "ok",
	[HT_R_LINKED_EVENT_FAILED] = "linked_event_failed",
	[HT_R_LINKED_EVENT_CHAIN_OPEN] = "linked_event_chain_open",
	[HT_R_ID_MUST_NOT_BE_ZERO] = "id_must_not_be_zero",
	[HT_R_ID_MUST_NOT_BE_INT_MAX] = "id_must_not_be_int_max",
	[HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE] = "flags_are_mutually_exclusive",
	[HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO] = "debit_account_id_must_not_be_zero",
	[HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX] = "debit_account_id_must_not_be_int_max",
	[HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO] = "credit_account_id_must_not_be_zero",
	[HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX] = "credit_account_id_must_not_be_int_max",
	[HT_R_ACCOUNTS_MUST_BE_DIFFERENT] = "accounts_must_be_different",
	[HT_R_PENDING_ID_MUST_BE_ZERO] = "pending_id_must_be_zero",
	[HT_R_PENDING_ID_MUST_NOT_BE_ZERO] = "pending_id_must_not_be_zero",
	[HT_R_PENDING_ID_MUST_NOT_BE_INT_MAX] = "pending_id_must_not_be_int_max",
	[HT_R_PENDING_ID_MUST_BE_DIFFERENT] = "pending_id_must_be_different",
	[HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER] = "timeout_reserved_for_pending_transfer",
	[HT_R_CLOSING_TRANSFER_MUST_BE_PENDING] = "closing_transfer_must_be_pending",
	[HT_R_AMOUNT_MUST_NOT_BE_ZERO] = "amount_must_not_be_zero",
	[HT_R_LEDGER_MUST_NOT_BE_ZERO] = "ledger_must_not_be_zero",
	[HT_R_CODE_MUST_NOT_BE_ZERO] = "code_must_not_be_zero",
	[HT_R_ID_ALREADY_FAILED] = "id_already_failed",
	[HT_R_EXISTS_WITH_DIFFERENT_FLAGS] = "exists_with_different_flags",
	[HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID] = "exists_with_different_debit_account_id",
	[HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID] = "exists_with_different_credit_account_id",
	[HT_R_EXISTS_WITH_DIFFERENT_AMOUNT] = "exists_with_different_amount",
	[HT_R_EXISTS_WITH_DIFFERENT_PENDING_ID] = "exists_with_different_pending_id",
	[HT_R_EXISTS_WITH_DIFFERENT_TIMEOUT] = "exists_with_different_timeout",
	[HT_R_EXISTS_WITH_DIFFERENT_LEDGER] = "exists_with_different_ledger",
	[HT_R_EXISTS_WITH_DIFFERENT_CODE] = "exists_with_different_code",
	[HT_R_EXISTS_WITH_DIFFERENT_USER_DATA] = "exists_with_different_user_data",
	[HT_R_EXISTS] = "exists",
	[HT_R_PENDING_TRANSFER_NOT_FOUND] = "pending_transfer_not_found",
	[HT_R_PENDING_TRANSFER_NOT_PENDING] = "pending_transfer_not_pending",
	[HT_R_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID] = "pending_transfer_has_different_debit_account_id",
	[HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID] = "pending_transfer_has_different_credit_account_id",
	[HT_R_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER] = "pending_transfer_has_different_ledger",
	[HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CODE] = "pending_transfer_has_different_code",
	[HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT] = "exceeds_pending_transfer_amount",
	[HT_R_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT] = "pending_transfer_has_different_amount",
	[HT_R_PENDING_TRANSFER_ALREADY_POSTED] = "pending_transfer_already_posted",
	[HT_R_PENDING_TRANSFER_ALREADY_VOIDED] = "pending_transfer_already_voided",
	[HT_R_PENDING_TRANSFER_EXPIRED] = "pending_transfer_expired",
	[HT_R_DEBIT_ACCOUNT_NOT_FOUND] = "debit_account_not_found",
	[HT_R_CREDIT_ACCOUNT_NOT_FOUND] = "credit_account_not_found",
	[HT_R_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER] = "accounts_must_have_the_same_ledger",
	[HT_R_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS] = "transfer_must_have_the_same_ledger_as_accounts",
	[HT_R_DEBIT_ACCOUNT_CLOSED] = "debit_account_closed",
	[HT_R_CREDIT_ACCOUNT_CLOSED] = "credit_account_closed",
	[HT_R_OVERFLOWS_DEBITS_PENDING] = "overflows_debits_pending",
	[HT_R_OVERFLOWS_CREDITS_PENDING] = "overflows_credits_pending",
	[HT_R_OVERFLOWS_DEBITS_POSTED] = "overflows_debits_posted",
	[HT_R_OVERFLOWS_CREDITS_POSTED] = "overflows_credits_posted",
	[HT_R_OVERFLOWS_DEBITS] = "overflows_debits",
	[HT_R_OVERFLOWS_CREDITS] = "overflows_credits",
	[HT_R_OVERFLOWS_TIMEOUT] = "overflows_timeout",
	[HT_R_EXCEEDS_CREDITS] = "exceeds_credits",
	[HT_R_EXCEEDS_DEBITS] = "exceeds_debits",
	[HT_R_RISK_BLOCKED] = "risk_blocked",
	[HT_R_NET_DEBIT_CAP_EXCEEDED] = "net_debit_cap_exceeded",
	[HT_R_PARTICIPANT_SUSPENDED] = "participant_suspended",
};

const char *ht_result_name(int result)
{
	if (result < 0 || result >= HT_R__MAX)
		return NULL;
	return result_names[result];
}

static const char *const account_flag_names[] = {
	"linked", "debits_must_not_exceed_credits",
	"credits_must_not_exceed_debits", "history", "closed",
};

static const char *const transfer_flag_names[] = {
	"linked", "pending", "post_pending_transfer", "void_pending_transfer",
	"balancing_debit", "balancing_credit", "closing_debit", "closing_credit",
};

static const char *flag_name(const char *const *names, size_t count,
			     uint16_t bit)
{
	for (size_t i = 0; i < count; i++)
		if (bit == (uint16_t)(1u << i))
			return names[i];
	return NULL;
}

static enum ht_err flag_parse(const char *const *names, size_t count,
			      const char *name, size_t len, uint16_t *bit)
{
	for (size_t i = 0; i < count; i++) {
		if (strlen(names[i]) == len && !memcmp(names[i], name, len)) {
			*bit = (uint16_t)(1u << i);
			return HT_OK;
		}
	}
	return HT_ERR_INVALID;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *ht_account_flag_name(uint16_t bit)
{
	return flag_name(account_flag_names, COUNT(account_flag_names), bit);
}

enum ht_err ht_account_flag_parse(const char *name, size_t len, uint16_t *bit)
{
	return flag_parse(account_flag_names, COUNT(account_flag_names), name,
			  len, bit);
}

const char *ht_transfer_flag_name(uint16_t bit)
{
	return flag_name(transfer_flag_names, COUNT(transfer_flag_names), bit);
}

enum ht_err ht_transfer_flag_parse(const char *name, size_t len, uint16_t *bit)
{
	return flag_parse(transfer_flag_names, COUNT(transfer_flag_names),
			  name, len, bit);
}

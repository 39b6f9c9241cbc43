#!/usr/bin/env bash
# api_scenarios.sh — the whole ledger scenario suite (tests/scenario/*.scn)
# through the network: each scenario's store is served by `huitong serve`
# and its requests go through `huitong client apply` (mutual TLS, signed
# requests, every receipt verified). The expected lines are the same ones
# `ledger apply` must print, so passing proves both give the same results.
# `! reopen` restarts the server (a graceful stop and a new start).
exec env HT_SCN_VIA=client bash "$(dirname "$0")/scenarios.sh" "$@"

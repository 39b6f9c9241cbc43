/*
 * commands.h — the subcommands of the `huitong` binary.
 *
 * Owner: cli. Each command is `int ht_cmd_<name>(int argc, char **argv)`
 * with argv[0] the subcommand's own name ("audit"), returning the process
 * exit code (0 ok, 1 a negative answer such as a failed verification, 2 a
 * usage error or failure). Every command prints its usage on --help and
 * its errors on stderr. Shared option helpers live in cli_util.h.
 */
#ifndef HUITONG_CLI_COMMANDS_H
#define HUITONG_CLI_COMMANDS_H

int ht_cmd_init(int argc, char **argv);       /* cmd_init.c */
int ht_cmd_ledger(int argc, char **argv);     /* cmd_ledger.c: ledger apply */
int ht_cmd_account(int argc, char **argv);    /* cmd_ledger.c */
int ht_cmd_transfer(int argc, char **argv);   /* cmd_ledger.c */
int ht_cmd_history(int argc, char **argv);    /* cmd_ledger.c */
int ht_cmd_journal(int argc, char **argv);    /* cmd_journal.c */
int ht_cmd_audit(int argc, char **argv);      /* cmd_audit.c */
int ht_cmd_bench(int argc, char **argv);      /* cmd_bench.c */
int ht_cmd_serve(int argc, char **argv);      /* cmd_serve.c */
int ht_cmd_participant(int argc, char **argv); /* cmd_participant.c */
int ht_cmd_client(int argc, char **argv);     /* cmd_client.c */
int ht_cmd_sim(int argc, char **argv);        /* cmd_sim.c: the payment simulator */
int ht_cmd_risk(int argc, char **argv);       /* cmd_risk.c: dispatches below */
int ht_cmd_iso20022(int argc, char **argv);   /* cmd_iso20022.c: check, submit */
int ht_cmd_qr(int argc, char **argv);         /* cmd_qr.c: parse, make, make-cpm */

/* `huitong risk <sub>`: argv[0] is the subcommand's name ("check"). */
int ht_cmd_risk_check(int argc, char **argv); /* cmd_risk_rules.c */
int ht_cmd_risk_test(int argc, char **argv);  /* cmd_risk_rules.c */
int ht_cmd_risk_train(int argc, char **argv); /* cmd_risk_model.c */
int ht_cmd_risk_score(int argc, char **argv); /* cmd_risk_score.c */
int ht_cmd_risk_eval(int argc, char **argv);  /* cmd_risk_eval.c */
int ht_cmd_risk_blocklist(int argc, char **argv); /* cmd_risk_blocklist.c */
int ht_cmd_token(int argc, char **argv);      /* cmd_token.c */
int ht_cmd_alias(int argc, char **argv);      /* cmd_alias.c */
int ht_cmd_switch(int argc, char **argv);     /* cmd_switch.c */

#endif

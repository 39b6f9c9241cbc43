/* client: being built (issue 3) */
typedef int ht_client_placeholder;

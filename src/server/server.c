/* server: being built (issue 3) */
typedef int ht_server_placeholder;

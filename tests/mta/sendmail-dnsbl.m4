FEATURE(`dnsbl', `rblmux.internal', `"550 Rejected: " $&{client_addr} " listed by rblmux"', `t')dnl

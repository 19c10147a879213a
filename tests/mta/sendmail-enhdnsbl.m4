FEATURE(`enhdnsbl', `rblmux.internal', `"550 Rejected: " $&{client_addr} " listed by rblmux"', `t', `127.0.0.2.')dnl

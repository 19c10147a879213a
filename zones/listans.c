/* placeholder: being written */
typedef int rblmux_placeholder_listans;

/* placeholder: being written */
typedef int rblmux_placeholder_cache_mem;

/* What the core server tells the services it hosts (xenstored) about domains. Private. */
#ifndef SPLITXEN_XEN_CORE_SERVER_HOOKS_H
#define SPLITXEN_XEN_CORE_SERVER_HOOKS_H

#include <stdint.h>
#include <xen/xen.h>

struct sxc_server_hooks {
    void *ctx;
    int fd;                                    /* polled by the server loop */
    void (*step)(void *ctx);                   /* called when fd is readable */
    void (*domain_created)(void *ctx, domid_t domid);
    void (*domain_destroyed)(void *ctx, domid_t domid);
    void (*close)(void *ctx);
};

/* Host xenstored on run_dir/xenstored in the server's loop. Returns 0 or -errno. */
int sxc_server_hooks_xenstored(struct sxc_server_hooks *h, const char *run_dir);

#endif

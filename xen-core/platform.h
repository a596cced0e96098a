/*
 * The platform seam: every backend and frontend runs on either real Xen or the sim hypervisor.
 * A platform handle says which, and which domain this process acts as.
 *
 *   sim: talks to splitxen-core over the UNIX socket named by $SPLITXEN_CORE
 *        (default $SPLITXEN_RUN/core.sock, $SPLITXEN_RUN defaulting to /run/splitxen).
 *   xen: libxengnttab / libxenevtchn / libxenstore on a real Xen host.
 */
#ifndef SPLITXEN_PLATFORM_H
#define SPLITXEN_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>

enum sx_plat_kind { SX_PLAT_SIM = 0, SX_PLAT_XEN = 1 };

struct sxc_conn;

struct sx_plat {
    enum sx_plat_kind kind;
    domid_t self;             /* the domain this process acts as */
    struct sxc_conn *conn;    /* sim: connection to splitxen-core; NULL on xen */
};

/* Pick the platform: "sim", "xen" or NULL/"auto" (xen where /dev/xen/privcmd exists).
 * Returns SX_PLAT_SIM/SX_PLAT_XEN or -EINVAL for an unknown name. */
int sx_plat_kind_from_name(const char *name);

/* Open a platform handle acting as domain `self`. On sim this connects to splitxen-core at
 * `core_path` (NULL: the default socket) and attaches to the domain. Returns 0 or -errno. */
int sx_plat_open(struct sx_plat **out, enum sx_plat_kind kind, domid_t self, const char *core_path);
/* NULL-safe, idempotent. */
void sx_plat_close(struct sx_plat *p);

/* Directory for sockets and state: $SPLITXEN_RUN or /run/splitxen. */
const char *sx_run_dir(void);
/* xenstored socket path for a domain on sim: $SPLITXEN_RUN/xenstored/socket for domain 0,
 * $SPLITXEN_RUN/xenstored/domain/<domid>.sock otherwise. Writes into buf. */
int sx_xenstored_path(char *buf, size_t len, domid_t domid);

#endif

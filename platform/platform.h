/*
 * The platform seam: every backend and frontend runs on either real Xen or the sim hypervisor.
 * A platform handle says which, and which domain this process acts as. What differs between
 * the two lives here and in evtchn/, grant/, ioreq/ and xen-core/; a backend or frontend asks
 * this module instead of testing the platform's kind.
 *
 *   sim: talks to splitxen-core over the UNIX socket named by $SPLITXEN_CORE
 *        (default <run dir>/core.sock; common/rundir.h) and to its xenstored over
 *        <run dir>/xenstored/.
 *   xen: libxengnttab / libxenevtchn / libxenstore on a real Xen host.
 */
#ifndef SPLITXEN_PLATFORM_H
#define SPLITXEN_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>

enum sx_plat_kind { SX_PLAT_SIM = 0, SX_PLAT_XEN = 1 };

struct sxc_conn;
struct xs_handle;

struct sx_plat {
    enum sx_plat_kind kind;
    domid_t self;             /* the domain this process acts as */
    struct sxc_conn *conn;    /* sim: connection to splitxen-core; NULL on xen */
    /* sim: the host's run directory (its xenstored sockets); "" = sx_run_dir(). A guest
     * that moved to another host (sx_plat_move) has the new host's here. */
    char run_dir[128];
    struct sxc_conn *old_conn;   /* sim, during a move: the previous host's connection */
};

/* What the platform's toolstack does by itself, so a program knows what is left to it. */
struct sx_plat_traits {
    const char *name;         /* "sim" / "xen" */
    /* libxl runs the hotplug script a device's `script` key names, and the script writes
     * physical-device and physical-device-path itself (sim: nothing runs them). */
    bool hotplug_scripts;
    /* A device model of the toolstack's (qemu) serves the guest beside splitxen-dm: it keeps
     * the PCI host bridge, the serial port, the platform device and the PCI slots below 8. */
    bool companion_dm;
    /* The ioreq server learns a domain's vCPU count by itself (sim); otherwise the caller
     * says it. */
    bool vcpus_known;
    /* Guest memory reaches the device model through the DMA mapcache (its counters mean
     * something). */
    bool dma_mapcache;
    /* The processes acting as a guest's kernel run its suspend and resume themselves (the
     * suspend hypercall is theirs to make; frontends/control). On xen the guest's own kernel
     * does it. */
    bool guest_suspend;
};

/* Pick the platform: "sim", "xen" or NULL/"auto" (xen where /dev/xen/privcmd exists).
 * Returns SX_PLAT_SIM/SX_PLAT_XEN or -EINVAL for an unknown name. */
int sx_plat_kind_from_name(const char *name);
/* The traits of a kind (never NULL; an unknown kind reads as sim). */
const struct sx_plat_traits *sx_plat_traits(enum sx_plat_kind kind);

/* Open a platform handle acting as domain `self`. On sim this connects to splitxen-core at
 * `core_path` (NULL: $SPLITXEN_CORE, else <run dir>/core.sock) and attaches to the domain.
 * Returns 0 or -errno. */
int sx_plat_open(struct sx_plat **out, enum sx_plat_kind kind, domid_t self, const char *core_path);
/* NULL-safe, idempotent. */
void sx_plat_close(struct sx_plat *p);

/* xenstored socket path for a domain on sim: <run dir>/xenstored/socket for domain 0,
 * <run dir>/xenstored/domain/<domid>.sock otherwise. Returns 0 or -ENAMETOOLONG. */
int sx_xenstored_path(char *buf, size_t len, domid_t domid);

/* sim: the guest p acts as now lives on as domain `domid` at the core socket `core_path`
 * (another host's, or this one's after a restore): connect there as it, and from then on act
 * as it (p->self, p->conn, p->run_dir: the directory of core_path). The previous connection
 * stays open in p->old_conn until sx_plat_move_done, so handles made on it can still be
 * released. Returns 0 or -errno (p is unchanged then). */
int sx_plat_move(struct sx_plat *p, const char *core_path, domid_t domid);
/* Close the previous host's connection (every mapping made through it goes). NULL-safe. */
void sx_plat_move_done(struct sx_plat *p);

/* The guest's side of suspend and resume, where its processes make the hypercall themselves
 * (traits.guest_suspend; -EOPNOTSUPP elsewhere). join: this process is part of the guest's
 * kernel, so the guest is suspended only once it has suspended too. suspend: the hypercall;
 * returns when the toolstack resumes the guest, cancelled (go on as before) or moved (go on as
 * `domid` at the core socket `core_path`: sx_plat_move). 0 or -errno. */
struct sx_plat_resume {
    bool moved;
    domid_t domid;
    char core_path[128];
};
int sx_plat_guest_join(struct sx_plat *p);
int sx_plat_guest_suspend(struct sx_plat *p, struct sx_plat_resume *out);

/* Open libxenstore for the domain p acts as: at `path` when given; else on sim at that
 * domain's xenstored socket (sx_xenstored_path), on xen (or with p NULL) where libxenstore
 * looks by itself ($XENSTORED_PATH, xenstored's socket or /dev/xen/xenbus). The caller owns
 * *out (xs_close). Returns 0 or -errno. */
int sx_plat_xs_open(const struct sx_plat *p, const char *path, struct xs_handle **out);

#endif

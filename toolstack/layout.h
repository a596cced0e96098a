/*
 * The xenstore nodes the toolstack writes for a domain and its devices, exactly as libxl
 * (Xen 4.17) writes them for `xl create` -- see ../shared/xenstore-reference/ beside the
 * checkout -- built as data first (a list of {path, value, perms}) and then applied in one
 * xenstore transaction.
 *
 * What the toolstack writes:
 *   domain: /local/domain/<id> and its name, domid, vm, memory/, cpu/, device/, control/,
 *           data, drivers, feature, attr, error, store/; /vm/<uuid>/; /libxl/<id>/.
 *   vbd:    frontend /local/domain/<fe>/device/vbd/<devid>          (n<fe>,r<be>)
 *           backend  /local/domain/<be>/backend/vbd/<fe>/<devid>     (n<be>,r<fe>)
 *           libxl's private copy /libxl/<fe>/device/vbd/<devid>      (n0)
 *   vif:    the same shape under vif/<devid>, with the vif keys.
 * What it does NOT write: everything the backend and the hotplug script write themselves --
 * feature-*, multi-queue-max-queues, max-ring-page-order, state past 1, physical-device,
 * physical-device-path, node, and hotplug-status (except the empty vif hotplug-status libxl
 * writes so that netback waits for it). On splitxen there is no hotplug script: the backend
 * writes hotplug-status and physical-device itself once it has opened its resource.
 * Console nodes are not written (splitxen has no xenconsoled).
 *
 * Functions return 0 or -errno.
 */
#ifndef SPLITXEN_TOOLSTACK_LAYOUT_H
#define SPLITXEN_TOOLSTACK_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "toolstack/xlcfg.h"

struct xs_handle;

/* Node flags. */
#define SX_XS_ROOT   0x1u   /* top of a subtree this layout owns: removed first on apply,
                               removed whole on unapply */
#define SX_XS_ENSURE 0x2u   /* shared parent (e.g. /local/domain/0/backend/vbd): created with
                               `perms` only if missing, never rewritten; pruned when empty */
#define SX_XS_DIR    0x4u   /* a directory: mkdir, no value */

struct sx_xs_node {
    char *path;
    char *value;     /* "" for directories */
    char *perms;     /* "n1,r0": owner first, then the ACL; letters n r w b */
    unsigned flags;
};

struct sx_layout {
    struct sx_xs_node *nodes;
    size_t n, cap;
};

/* What the domain layout needs beyond the config. */
struct sx_layout_dom {
    uint32_t domid;
    const char *name;
    const char *uuid;            /* "xxxxxxxx-xxxx-..." */
    enum sx_cfg_domtype type;
    uint64_t memory_kb;          /* memory/target */
    uint64_t maxmem_kb;          /* memory/static-max */
    unsigned vcpus, maxvcpus;    /* cpu/<i>/availability: online below vcpus */
    int64_t store_port;          /* store/port, or < 0 to leave it out */
    int64_t store_ring_ref;      /* store/ring-ref, or < 0 to leave it out */
    const char *start_time;      /* /vm/<uuid>/start_time ("%lu.%02d"), NULL: leave out */
};

void sx_layout_init(struct sx_layout *l);
/* NULL-safe, idempotent; leaves an empty layout. */
void sx_layout_clear(struct sx_layout *l);

/* Append the nodes libxl__domain_make + libxl__build_post write. */
int sx_layout_add_domain(struct sx_layout *l, const struct sx_layout_dom *d);
/* Append a vbd (devid = disk->devid) between frontend `fe` and backend `be`. */
int sx_layout_add_vbd(struct sx_layout *l, uint32_t fe, uint32_t be, enum sx_cfg_domtype type,
                      const struct sx_cfg_disk *disk);
/* Append a vif (devid = vif->devid). */
int sx_layout_add_vif(struct sx_layout *l, uint32_t fe, uint32_t be,
                      const struct sx_cfg_vif *vif);

/* Find a node by path (NULL if absent). */
const struct sx_xs_node *sx_layout_find(const struct sx_layout *l, const char *path);

/* Parse "n1,r0" into at most `max` entries of {domid, XS_PERM_*}; returns the count or
 * -EINVAL. */
struct xs_permissions;
int sx_layout_parse_perms(const char *s, struct xs_permissions *out, unsigned max);

/* Write every node in one transaction (retried on EAGAIN at most SX_LAYOUT_RETRIES times).
 * Returns 0, -EAGAIN when the retries ran out, or the -errno of the failed operation (the
 * transaction is then aborted: nothing was written). */
#define SX_LAYOUT_RETRIES 16
int sx_layout_apply(struct xs_handle *xs, const struct sx_layout *l);
/* Remove what apply wrote: every ROOT subtree, then every ENSURE parent and every parent of
 * a ROOT that is left empty (as libxl__xs_path_cleanup). One transaction, same retries. */
int sx_layout_unapply(struct xs_handle *xs, const struct sx_layout *l);

/* Remove a domain's devices and the domain's own nodes using only what is in xenstore (the
 * toolstack's destroy path, like libxl__devices_destroy + libxl__destroy_domid): for each
 * /libxl/<domid>/device/<kind>/<devid>, its frontend and backend directories (pruning empty
 * parents), then /local/domain/<domid>, the /vm/<uuid> it points at and /libxl/<domid>.
 * Missing nodes are not an error. */
int sx_layout_remove_domain(struct xs_handle *xs, uint32_t domid);
/* Remove one device's nodes (frontend, backend, libxl copy), found through
 * /libxl/<fe>/device/<kind>/<devid>. -ENOENT if it is not there. */
int sx_layout_remove_device(struct xs_handle *xs, uint32_t fe, const char *kind,
                            uint32_t devid);

#endif

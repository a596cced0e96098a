/* The core server's log-dirty tracking (logdirty.c has the design). Private to xen-core. Every
 * call returns 0 (or a count) or -errno. */
#ifndef SPLITXEN_XEN_CORE_LOGDIRTY_H
#define SPLITXEN_XEN_CORE_LOGDIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include "xen-core/shared.h"

struct sxc_logdirty;

/* Start the fault thread. */
int sxc_logdirty_open(struct sxc_logdirty **out);
/* Stop it; every tracked view is unprotected and its fd closed. NULL-safe. */
void sxc_logdirty_close(struct sxc_logdirty *ld);

/* Take over `uffd` (a userfaultfd of the process behind connection `owner`) for its mapping
 * [addr, addr + len) of domain domid's memory: registered for write-protection here; with
 * `active` (the domain's shared region, when it is in log-dirty mode) protected at once.
 * On success the fd belongs to the tracker; on failure the caller still owns it. -ENOSPC
 * beyond four trackers a connection. */
int sxc_logdirty_track(struct sxc_logdirty *ld, int owner, domid_t domid, int uffd,
                       uint64_t addr, uint64_t len, struct sxd_shared *active);
/* Whether connection `owner` handed over a live tracker for domid. */
bool sxc_logdirty_tracked(struct sxc_logdirty *ld, int owner, domid_t domid);
/* A connection closed: drop its trackers. A domain died: its trackers stop tracking (the
 * domain leaves log-dirty mode when sh is given) and go with their connections. */
void sxc_logdirty_drop_owner(struct sxc_logdirty *ld, int owner);
void sxc_logdirty_drop_domain(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh);

/* Clear both bitmaps, enter log-dirty mode, write-protect every tracked view of the domain. */
int sxc_logdirty_enable(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh);
/* Move the dirty bitmap to the round bitmap and protect those frames again. Returns the
 * number of frames in the round, or -EINVAL when the domain is not in log-dirty mode. */
int64_t sxc_logdirty_round(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh);
/* Leave log-dirty mode; every view of the domain is writable again. */
void sxc_logdirty_disable(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh);
/* Write faults taken so far (all domains). */
uint64_t sxc_logdirty_faults(struct sxc_logdirty *ld);

#endif

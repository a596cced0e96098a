/*
 * sxguest: the control plane of a guest kernel, in a process acting as a sim guest (Linux's
 * drivers/xen/manage.c and the xenbus frontends' suspend/resume). It follows
 * control/shutdown in xenstore and runs the suspend protocol for the devices registered with
 * it. When the toolstack writes "suspend" (save, live migration):
 *
 *   1. each device's suspend hook quiesces it: nothing new goes on its rings, what is in
 *      flight is kept (Linux keeps it in blkfront's shadow);
 *   2. the process makes the suspend hypercall (sx_plat_guest_suspend), which returns when the
 *      toolstack resumes the guest;
 *   3. cancelled (a failed save or migration): each resume hook runs with moved = false, and
 *      the devices go on with the backends they had;
 *      moved (restore, migration): the platform handle connects to the host the guest lives
 *      on now, as the domain it is now (sx_plat_move), each resume hook runs with
 *      moved = true (reconnect through xenbus on the new paths, re-grant, reissue what was in
 *      flight, as Linux's blkfront_resume and netfront_resume), and the old host's
 *      connection is closed.
 *
 * How a process learns its new host: the reply to its suspend hypercall names the core socket
 * and the domid it is to go on as. The toolstack puts them there (SXP_DOM_RESUME) once the
 * destination runs the domain: a restore on this host, or the sender of a migration when the
 * receiver confirmed. Nothing else needs to reach the process.
 *
 * Every process of the guest that has devices opens one (the guest counts as suspended when
 * all have made the hypercall). Functions return 0 (or a count) or -errno.
 */
#ifndef SPLITXEN_FRONTENDS_CONTROL_H
#define SPLITXEN_FRONTENDS_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"

struct sx_guest;

#define SX_GUEST_MAX_DEVS 16

/* A device of the guest. suspend and resume run on the thread that calls sx_guest_handle;
 * suspend must stop every other thread's use of the device (and may block them until its
 * resume), resume must leave it usable or fail. */
struct sx_guest_dev {
    const char *name;               /* for messages */
    int (*suspend)(void *arg);
    int (*resume)(void *arg, bool moved);
    void *arg;
};

struct sx_guest_stats {
    uint64_t suspends, cancels, moves;
    uint64_t resume_errors;
    uint64_t last_pause_us;         /* the request seen .. every device back */
    uint64_t max_pause_us;
    uint64_t last_hypercall_us;     /* of that, time in the suspend hypercall */
};

/* Join p's guest and watch its control/shutdown (writes control/feature-suspend = 1, as
 * Linux). -EOPNOTSUPP where the guest's own kernel suspends it (xen). */
int sx_guest_open(struct sx_guest **out, struct sx_plat *p);
/* Stops the thread if one runs. NULL-safe. */
void sx_guest_close(struct sx_guest *g);

/* Register / unregister a device (by arg). -ENOSPC beyond SX_GUEST_MAX_DEVS. */
int sx_guest_add(struct sx_guest *g, const struct sx_guest_dev *dev);
void sx_guest_remove(struct sx_guest *g, void *arg);

/* For a process with its own loop: readable when control/shutdown may have changed; then call
 * sx_guest_handle. The fd changes after a move: poll it anew each time. */
int sx_guest_fd(struct sx_guest *g);
/* Act on control/shutdown. Returns 0 when there was nothing to do, 1 after a suspend and
 * resume, or -errno: the hypercall failed (the host is gone: the guest cannot go on) or a
 * device did not come back (logged; counted in resume_errors). */
int sx_guest_handle(struct sx_guest *g);
/* Or let a thread of its own do it (a process without a control loop, fio). A failure is
 * logged and the thread goes on watching. */
int sx_guest_start(struct sx_guest *g);

void sx_guest_get_stats(struct sx_guest *g, struct sx_guest_stats *out);

#endif

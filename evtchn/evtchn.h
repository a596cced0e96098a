/*
 * Event channels, shaped like libxenevtchn: one handle, one pollable fd, ports bound through it.
 * A port that fires is masked until sx_evtchn_unmask(); an event sent while masked stays pending
 * and is delivered at unmask. sim and xen implementations behind one opaque handle.
 * Notification on sim is a shared pending bit plus an eventfd write: no daemon round trip.
 *
 * All calls return >= 0 on success and -errno on failure.
 */
#ifndef SPLITXEN_EVTCHN_H
#define SPLITXEN_EVTCHN_H

#include <stdint.h>
#include <xen/xen.h>
#include <xen/event_channel.h>

#include "xen-core/platform.h"

struct sx_evtchn;

int sx_evtchn_open(struct sx_evtchn **out, struct sx_plat *p);
void sx_evtchn_close(struct sx_evtchn *e);               /* NULL-safe; unbinds every port */
/* Pollable: readable when a bound port has an event. */
int sx_evtchn_fd(struct sx_evtchn *e);

/* Allocate a port that `remote` may bind to. Returns the local port. */
int sx_evtchn_bind_unbound(struct sx_evtchn *e, domid_t remote);
/* Bind to `remote_port` of domain `remote` (which allocated it unbound for us).
 * Returns the local port. remote may be our own domain (a local loopback channel). */
int sx_evtchn_bind_interdomain(struct sx_evtchn *e, domid_t remote, evtchn_port_t remote_port);
int sx_evtchn_unbind(struct sx_evtchn *e, evtchn_port_t port);

/* Send an event to the other end of `port`. */
int sx_evtchn_notify(struct sx_evtchn *e, evtchn_port_t port);
/* Next port with an event (masked on return), or -EAGAIN when none. */
int sx_evtchn_pending(struct sx_evtchn *e);
int sx_evtchn_unmask(struct sx_evtchn *e, evtchn_port_t port);
int sx_evtchn_mask(struct sx_evtchn *e, evtchn_port_t port);

/* Number of ports bound through this handle (leak checks, counters). */
unsigned sx_evtchn_nr_bound(const struct sx_evtchn *e);

#endif

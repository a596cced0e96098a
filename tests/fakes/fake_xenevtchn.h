/*
 * A programmable stand-in for libxenevtchn (the functions evtchn/evtchn_xen.c calls, with the
 * real <xenevtchn.h> prototypes). A unit test links fake_xenevtchn.c instead of -lxenevtchn.
 * The handle's fd is a blocking eventfd, readable while the fake's pending queue is not empty,
 * like /dev/xen/evtchn; xenevtchn_pending on an empty queue fails with EAGAIN and counts a
 * `would_block` when the fd was left blocking (the real driver would have slept).
 * Unbinding a port that is not bound fails with ENOTCONN, as Linux's evtchn driver does.
 */
#ifndef SPLITXEN_FAKE_XENEVTCHN_H
#define SPLITXEN_FAKE_XENEVTCHN_H

#include <stdbool.h>
#include <stdint.h>
#include <xenevtchn.h>

#define FAKE_EVTCHN_PORTS 1024
#define FAKE_EVTCHN_QUEUE 64

struct fake_evtchn_state {
    /* Programmed: a non-zero errno makes the call fail with it. */
    int open_errno, bind_errno, unbind_errno, notify_errno, unmask_errno, pending_errno;
    evtchn_port_t next_port;            /* bind hands out ports from here */

    /* Recorded. */
    unsigned opens, closes;
    int live_handles;
    unsigned bind_calls, unbind_calls, notify_calls, unmask_calls, pending_calls, would_block;
    uint32_t bind_domid;
    evtchn_port_t bind_rport, unbind_port, notify_port, unmask_port;
    bool bound[FAKE_EVTCHN_PORTS];
    evtchn_port_t queue[FAKE_EVTCHN_QUEUE];
    unsigned qhead, qlen;
};

extern struct fake_evtchn_state fake_evtchn;

void fake_evtchn_reset(void);
/* Queue `port` as pending on the most recently opened handle (its fd becomes readable).
 * Returns 0, or -ENOSPC when the queue is full. */
int fake_evtchn_fire(evtchn_port_t port);

#endif

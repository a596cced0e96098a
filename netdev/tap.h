/*
 * TAP devices for netback's world side (vif<domid>.<devid> on a bridge) and for the TAP
 * netfront (eth0 inside a guest network namespace).
 *
 * Every queue fd is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (plus IFF_MULTI_QUEUE when
 * more than one queue), O_NONBLOCK | O_CLOEXEC. Each frame read or written on a queue fd is
 *
 *     struct virtio_net_hdr_v1 (SX_TAP_VNET_HDR_LEN = 12 bytes, little-endian) | Ethernet frame
 *
 * The 12-byte layout is the virtio 1.0 / mergeable-rx-buffers header (the one vhost-net and QEMU
 * use); its trailing num_buffers field is meaningless here: written as 0, ignored on read.
 * netdev/vnet.h converts this header to and from netif flags and GSO extras.
 *
 * Offloads (TUNSETOFFLOAD) describe what the reader of the TAP accepts, i.e. what the kernel
 * may hand us on read(): TUN_F_CSUM (partial checksums, IPv4 and IPv6 alike), TUN_F_TSO4,
 * TUN_F_TSO6 (both require TUN_F_CSUM). No UFO/USO/ECN: netif has no GSO type for them, so the
 * kernel segments those before we see them. Writes may always carry GSO and partial checksums.
 * For netback the offloads mirror the frontend's rx features (sx_tap_offload_for); for the TAP
 * netfront they mirror the backend's tx features.
 *
 * Closing the last queue fd removes the device (never made persistent).
 */
#ifndef SPLITXEN_NETDEV_TAP_H
#define SPLITXEN_NETDEV_TAP_H

#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stdint.h>

#define SX_TAP_VNET_HDR_LEN 12 /* sizeof(struct virtio_net_hdr_v1) */
#define SX_TAP_MAX_QUEUES 16
#define SX_TAP_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)

_Static_assert(sizeof(struct virtio_net_hdr_v1) == SX_TAP_VNET_HDR_LEN, "vnet header layout");

struct sx_tap;

struct sx_tap_config {
    const char *name;      /* required, e.g. "vif5.0" or "eth0" (< IFNAMSIZ) */
    unsigned nqueues;      /* 0 or 1: one queue; up to SX_TAP_MAX_QUEUES (IFF_MULTI_QUEUE) */
    const uint8_t *mac;    /* 6 bytes, or NULL to keep the kernel's random one */
    unsigned mtu;          /* 0: keep the default (1500) */
    unsigned offload;      /* TUN_F_* subset of SX_TAP_OFFLOADS */
    const char *bridge;    /* attach to this bridge (created if missing, brought up); or NULL */
    bool up;               /* bring the TAP up */
    bool use_netns;        /* create the TAP inside netns_fd instead of the thread's namespace */
    int netns_fd;          /* only read when use_netns */
};

/* Create and configure the TAP. On failure nothing is left behind. 0 or -errno. */
int sx_tap_open(const struct sx_tap_config *cfg, struct sx_tap **out);
/* Close every queue fd (the kernel removes the device). NULL-safe. */
void sx_tap_close(struct sx_tap *tap);

/* Non-blocking fd of queue q (< sx_tap_nqueues), or -EINVAL. */
int sx_tap_fd(const struct sx_tap *tap, unsigned q);
unsigned sx_tap_nqueues(const struct sx_tap *tap);
int sx_tap_ifindex(const struct sx_tap *tap);   /* in the namespace the TAP lives in now */
const char *sx_tap_name(const struct sx_tap *tap);

/* Change the offloads (e.g. when the frontend connects and its features are known). 0/-errno */
int sx_tap_set_offload(struct sx_tap *tap, unsigned offload);
/* Set the MTU (e.g. from the frontend's "mtu" key). 0 or -errno. */
int sx_tap_set_mtu(struct sx_tap *tap, unsigned mtu);
/* Move the TAP into netns_fd, renamed to newname (NULL keeps the name), and bring it up again
 * if cfg.up was set. The queue fds stay valid. 0 or -errno. */
int sx_tap_move(struct sx_tap *tap, int netns_fd, const char *newname);

/*
 * The offloads a TAP read side may use for a receiver with these features (netif's
 * feature-no-csum-offload inverted, feature-gso-tcpv4, feature-gso-tcpv6). TUN_F_CSUM covers
 * IPv6 too: for a receiver without feature-ipv6-csum-offload, fill IPv6 checksums in software
 * (sx_net_rx_from_vnet does it given its caps).
 */
static inline unsigned sx_tap_offload_for(bool csum, bool gso_tcpv4, bool gso_tcpv6)
{
    if (!csum)
        return 0;
    return TUN_F_CSUM | (gso_tcpv4 ? TUN_F_TSO4 : 0) | (gso_tcpv6 ? TUN_F_TSO6 : 0);
}

/*
 * Batched frame I/O on one TAP queue fd.
 *
 * A TAP moves one frame per system call (readv/writev carry one frame; sendmmsg/recvmmsg want a
 * socket), and a system call is dear on the machines splitxen runs on (a read() that finds
 * nothing costs microseconds). sx_tap_io submits a burst as one io_uring submission, a read or
 * write per frame, all issued inline by the one io_uring_enter: one system call for the lot.
 * Reads carry RWF_NOWAIT so that one finding the queue empty ends at once with -EAGAIN (without
 * it io_uring would park it until a frame arrives). A read burst asks for as many frames as the
 * queue held last time (plus room to grow), not always for n: a read that finds nothing is
 * cheap inside the kernel but not free.
 *
 * sx_tap_io_rx_ready says without a system call whether a read burst can find anything: a
 * multishot poll on the fd, its work deferred to the thread's own submissions (DEFER_TASKRUN),
 * raises a flag in the ring's shared memory when a frame arrives after a burst emptied the
 * queue. The thread's other sleeps (poll(2) on its event channel) are not disturbed by it.
 *
 * The ring belongs to the thread that uses the handle (io_uring's DEFER_TASKRUN has one
 * submitter): it is set up by the first burst, and set up again if the handle moves to another
 * thread; sx_tap_io_release lets the thread tear its ring down before it goes. Nothing of a
 * ring holds the TAP beyond a burst (the poll watches an epoll set holding the fd): the TAP
 * goes when its fds close, even when the process is killed.
 *
 * Where io_uring is missing or refused, or the TAP cannot do RWF_NOWAIT, or SX_TAP_IO_SYSCALLS
 * is asked for, the same calls fall back to one readv/writev per frame (rx_ready always true);
 * the results are the same. The handle does not own the fd.
 */
#include <sys/uio.h>

#define SX_TAP_IO_MAX 64u               /* frames per call */
#define SX_TAP_IO_SYSCALLS 0x1u         /* sx_tap_io_open: no io_uring, a system call a frame */

struct sx_tap_frame {
    const struct iovec *iov;            /* where the vnet header and frame are (write) or go
                                           (read), in order */
    unsigned niov;
    int res;                            /* bytes moved, or -errno */
};

struct sx_tap_io_stats {
    uint64_t calls;                     /* system calls made (io_uring_enter or readv/writev) */
    uint64_t reads, writes;             /* frames moved */
    uint64_t empty_reads;               /* reads that found the queue empty */
};

struct sx_tap_io;
/* A handle for batched I/O on fd (no ring yet). 0, -ENOMEM or -EINVAL. */
int sx_tap_io_open(struct sx_tap_io **out, int fd, unsigned flags);
/* Tear down the calling thread's ring, if it has one (the handle stays usable). NULL-safe. */
void sx_tap_io_release(struct sx_tap_io *io);
/* Release and free. NULL-safe. */
void sx_tap_io_close(struct sx_tap_io *io);
/* Whether bursts go through io_uring (false: a system call a frame). Sets the ring up. */
bool sx_tap_io_batched(struct sx_tap_io *io);
const struct sx_tap_io_stats *sx_tap_io_stats(const struct sx_tap_io *io);
/* false only when no frame arrived since a read burst found the queue empty (no system call;
 * always true without the ring's hint). */
bool sx_tap_io_rx_ready(struct sx_tap_io *io);

/* Write the frames f[0..n) (n <= SX_TAP_IO_MAX) in order; f[i].res gets each result (a frame
 * the kernel refused, e.g. a malformed vnet header, fails alone). Returns how many were
 * written. */
int sx_tap_io_write(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n);
/* Read up to n (<= SX_TAP_IO_MAX) waiting frames, in arrival order, into f[0..ret): f[i].res
 * is the length read (vnet header included). Frames land where the caller's iovecs say, but
 * the frames' iovec pointers may come back permuted among f[0..n) (a frame that arrived
 * during the burst can land after a read that found the queue empty: the slots are
 * exchanged, not copied). Returns the count (0: none waiting), or -errno when the first read
 * failed with something other than EAGAIN. */
int sx_tap_io_read(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n);

#endif

/*
 * sx_hvmdisk: an AHCI driver for a sim HVM guest. The calling process acts as the HVM
 * domain's vCPU 0 (sx_ioreq_guest_open): it finds the AHCI function on PCI bus 0 through
 * 0xCF8/0xCFC, places its ABAR, enables memory decoding and bus mastering, resets the HBA,
 * sets up port 0's command list, received-FIS area and command tables in its own guest
 * memory, identifies the disk, and then moves data between the caller's buffers and
 * per-slot bounce buffers in guest memory: reads and writes as NCQ commands (READ/WRITE
 * FPDMA QUEUED, up to 32 tags), flush (FLUSH CACHE EXT) and discard (DSM TRIM) alone.
 *
 * Completion: the function's INTx line level is read from the sim page (no ioreq); when it
 * is up, PxIS is cleared and PxSACT/PxCI read. A data command succeeded when its PRDBC holds
 * the whole byte count; a non-data command when no task-file error came with it.
 *
 * Single-threaded: one handle, one thread at a time. All calls return 0 (or a count) or
 * -errno.
 */
#ifndef SPLITXEN_FRONTENDS_HVMDISK_H
#define SPLITXEN_FRONTENDS_HVMDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/platform.h"

struct sx_hvmdisk;

struct sx_hvmdisk_opts {
    domid_t dm_domid;           /* the device model's domain (0) */
    uint64_t abar;              /* where to place the ABAR (0: 0xF0100000) */
    unsigned depth;             /* slots to use, 1..32 (0: 32; 1 without NCQ) */
    size_t max_io;              /* largest read/write in bytes (0: 128 KiB; <= 32 MiB); the
                                   guest memory used is 12 KiB + depth * max_io */
    int timeout_ms;             /* each register handshake and wait (0: 5000) */
    unsigned spin_us;           /* spin on the interrupt line before sleeping (default 20) */
};

struct sx_hvmdisk_info {
    uint64_t sectors, size_bytes;
    unsigned sector_size, ncq_depth, depth;
    uint8_t devfn;
    uint64_t abar;
    unsigned irq_line;
    char model[41], serial[21], firmware[9];
};

enum sx_hvmdisk_op { SX_HVMDISK_READ, SX_HVMDISK_WRITE, SX_HVMDISK_FLUSH, SX_HVMDISK_DISCARD };

struct sx_hvmdisk_cpl {
    void *cookie;
    int res;                    /* bytes (0 for flush/discard) or -EIO */
};

struct sx_hvmdisk_stats {
    uint64_t submitted, completed, errors, mmio, irq_waits, polls, kicks;
    uint64_t forced;            /* completions found by the once-a-second look */
    uint64_t lost_irqs;         /* ... of those, after a quiet wait with the line down */
};

void sx_hvmdisk_opts_default(struct sx_hvmdisk_opts *o);
/* p: the platform handle of the HVM domain (sx_plat_open as that domid). */
int sx_hvmdisk_open(struct sx_hvmdisk **out, struct sx_plat *p, const struct sx_hvmdisk_opts *o);
void sx_hvmdisk_close(struct sx_hvmdisk *h);              /* NULL-safe; stops the port */
const struct sx_hvmdisk_info *sx_hvmdisk_info(const struct sx_hvmdisk *h);
const struct sx_hvmdisk_stats *sx_hvmdisk_stats(const struct sx_hvmdisk *h);

/* Queue one operation (off and len in whole sectors; buf is the caller's, read into when the
 * read completes, copied out of at once for a write). -EAGAIN: all slots busy (poll, retry);
 * -EINVAL: misaligned, past the end, or longer than max_io. Nothing reaches the device until
 * sx_hvmdisk_kick. */
int sx_hvmdisk_submit(struct sx_hvmdisk *h, enum sx_hvmdisk_op op, uint64_t off, void *buf,
                      size_t len, void *cookie);
/* Issue what is queued: NCQ commands together (PxSACT then PxCI); a flush or discard only
 * once nothing else is in flight (it stays queued until then; poll issues it). */
int sx_hvmdisk_kick(struct sx_hvmdisk *h);
/* Non-blocking: reap up to max completions. */
int sx_hvmdisk_poll(struct sx_hvmdisk *h, struct sx_hvmdisk_cpl *cpl, unsigned max);
/* Kick, then reap until min completions (or timeout_ms; < 0 waits for ever). Count or -errno. */
int sx_hvmdisk_wait(struct sx_hvmdisk *h, struct sx_hvmdisk_cpl *cpl, unsigned min, unsigned max,
                    int timeout_ms);
/* Operations queued or in flight. */
unsigned sx_hvmdisk_busy(const struct sx_hvmdisk *h);
/* Synchronous helpers (read/write/flush one range and wait). */
int sx_hvmdisk_rw(struct sx_hvmdisk *h, enum sx_hvmdisk_op op, uint64_t off, void *buf,
                  size_t len);

#endif

/*
 * sx_hvmdisk: the sim HVM guest's AHCI driver (see hvmdisk.h).
 *
 * Guest memory layout (one contiguous allocation from the domain's page allocator):
 *   page 0:        command list (32 x 32 bytes) at 0, received-FIS area at 0x400
 *   pages 1..2:    32 command tables of 256 bytes (CFIS at 0, PRDT at 0x80: 8 entries)
 *   then:          one bounce buffer of max_io bytes per slot
 */
#define SX_LOG_MODULE "hvmdisk"
#include "frontends/hvmdisk/hvmdisk.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "barrier.h"
#include "ioreq/ioreq.h"

#define NSLOTS 32u
#define SECTOR 512u
#define CT_SIZE 256u
#define CT_MAX_PRD 8u
#define PRD_MAX (4u << 20)

#define HBA_CAP 0x00
#define HBA_GHC 0x04
#define HBA_PI 0x0c
#define P0 0x100
#define P_CLB (P0 + 0x00)
#define P_CLBU (P0 + 0x04)
#define P_FB (P0 + 0x08)
#define P_FBU (P0 + 0x0c)
#define P_IS (P0 + 0x10)
#define P_IE (P0 + 0x14)
#define P_CMD (P0 + 0x18)
#define P_TFD (P0 + 0x20)
#define P_SIG (P0 + 0x24)
#define P_SSTS (P0 + 0x28)
#define P_SCTL (P0 + 0x2c)
#define P_SERR (P0 + 0x30)
#define P_SACT (P0 + 0x34)
#define P_CI (P0 + 0x38)

#define PIS_DHRS (1u << 0)
#define PIS_PSS (1u << 1)
#define PIS_SDBS (1u << 3)
#define PIS_TFES (1u << 30)

enum qstate { S_FREE, S_QUEUED, S_ISSUED };

struct hslot {
    enum qstate state;
    enum sx_hvmdisk_op op;
    bool ncq;
    void *buf;
    uint32_t bytes;
    void *cookie;
    bool tfe;                   /* a task-file error was seen while it was in flight */
};

struct sx_hvmdisk {
    struct sx_plat *plat;
    struct sx_ioreq_guest *g;
    struct sx_hvmdisk_opts o;
    struct sx_hvmdisk_info info;
    uint64_t gpa;               /* base of our allocation */
    uint8_t *va;
    uint32_t pages;
    uint32_t free_mask, ncq_busy, other_busy, done_mask;
    unsigned queued;
    uint8_t fifo[NSLOTS];       /* queued slots in submission order */
    unsigned fifo_n;
    struct hslot s[NSLOTS];
    bool started;
    int64_t last_force_ms;
    int io_error;               /* first failed register access, or 0 */
    struct sx_hvmdisk_stats st;
};

/* ---------------------------------------------------------------- register access */

/* Register accesses; a failed one (the device model does not answer) is remembered in
 * io_error, which the data path reports instead of waiting for ever. */
static uint32_t rd(struct sx_hvmdisk *h, unsigned reg)
{
    uint64_t v = UINT32_MAX;
    h->st.mmio++;
    int rc = sx_ioreq_mmio_read(h->g, h->info.abar + reg, 4, &v);
    if (rc < 0) {
        h->io_error = rc;
        return UINT32_MAX;
    }
    return (uint32_t)v;
}

static int wr(struct sx_hvmdisk *h, unsigned reg, uint32_t v)
{
    h->st.mmio++;
    int rc = sx_ioreq_mmio_write(h->g, h->info.abar + reg, 4, v);
    if (rc < 0)
        h->io_error = rc;
    return rc;
}

/* Wait until (reg & mask) == want. */
static int wait_reg(struct sx_hvmdisk *h, unsigned reg, uint32_t mask, uint32_t want)
{
    int64_t end = (int64_t)sx_now_ms() + h->o.timeout_ms;
    for (;;) {
        uint32_t v = rd(h, reg);
        if ((v & mask) == want)
            return 0;
        if ((int64_t)sx_now_ms() > end)
            return -ETIMEDOUT;
        struct timespec ts = { 0, 200 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static uint8_t *cmd_hdr(struct sx_hvmdisk *h, unsigned n) { return h->va + n * 32; }
static uint8_t *cmd_tbl(struct sx_hvmdisk *h, unsigned n) { return h->va + 4096 + n * CT_SIZE; }
static uint64_t cmd_tbl_gpa(struct sx_hvmdisk *h, unsigned n) { return h->gpa + 4096 + n * CT_SIZE; }
static uint8_t *bounce(struct sx_hvmdisk *h, unsigned n) { return h->va + 3 * 4096 + n * h->o.max_io; }
static uint64_t bounce_gpa(struct sx_hvmdisk *h, unsigned n) { return h->gpa + 3 * 4096 + n * h->o.max_io; }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }   /* x86: little endian */
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Fill slot n's header and table: an H2D register FIS for `cmd` and one PRD per 4 MiB. */
static void build(struct sx_hvmdisk *h, unsigned n, uint8_t cmd, bool write, uint64_t lba,
                  uint32_t count, uint32_t bytes, bool ncq)
{
    uint8_t *t = cmd_tbl(h, n);
    memset(t, 0, 0x80);
    t[0] = 0x27;
    t[1] = 0x80;
    t[2] = cmd;
    t[4] = (uint8_t)lba;
    t[5] = (uint8_t)(lba >> 8);
    t[6] = (uint8_t)(lba >> 16);
    t[7] = 0x40;
    t[8] = (uint8_t)(lba >> 24);
    t[9] = (uint8_t)(lba >> 32);
    t[10] = (uint8_t)(lba >> 40);
    if (ncq) {
        t[3] = (uint8_t)count;
        t[11] = (uint8_t)(count >> 8);
        t[12] = (uint8_t)(n << 3);
    } else {
        t[12] = (uint8_t)count;
        t[13] = (uint8_t)(count >> 8);
        if (cmd == 0x06)
            t[3] = 1;                                   /* DSM: TRIM */
    }
    unsigned prdtl = 0;
    for (uint32_t done = 0; done < bytes; prdtl++) {
        uint32_t len = bytes - done < PRD_MAX ? bytes - done : PRD_MAX;
        uint8_t *e = t + 0x80 + prdtl * 16;
        uint64_t a = bounce_gpa(h, n) + done;
        put32(e, (uint32_t)a);
        put32(e + 4, (uint32_t)(a >> 32));
        put32(e + 8, 0);
        put32(e + 12, len - 1);
        done += len;
    }
    uint8_t *hd = cmd_hdr(h, n);
    uint64_t ct = cmd_tbl_gpa(h, n);
    put32(hd, 5u | (write ? 1u << 6 : 0) | (uint32_t)prdtl << 16);
    put32(hd + 4, 0);                                   /* PRDBC */
    put32(hd + 8, (uint32_t)ct);
    put32(hd + 12, (uint32_t)(ct >> 32));
    /* The header and table are written before the doorbell (an MMIO write through the ioreq
     * slot, which orders after these stores with its own barriers). */
}

/* ---------------------------------------------------------------- completions */

static int slot_result(struct sx_hvmdisk *h, unsigned n)
{
    struct hslot *s = &h->s[n];
    if (s->op == SX_HVMDISK_READ || s->op == SX_HVMDISK_WRITE) {
        xen_rmb();  /* PRDBC is read after PxSACT/PxCI said the command is done */
        uint32_t prdbc = get32(cmd_hdr(h, n) + 4);
        if (prdbc != s->bytes)
            return -EIO;
        if (s->op == SX_HVMDISK_READ && s->buf)
            memcpy(s->buf, bounce(h, n), s->bytes);
        return (int)s->bytes;
    }
    return s->tfe ? -EIO : 0;
}

/* Read PxIS (clear it), PxSACT and PxCI; collect finished slots. Slots seen finished beyond
 * `max` are kept in done_mask for the next call (the line has dropped by then). */
static int reap(struct sx_hvmdisk *h, struct sx_hvmdisk_cpl *cpl, unsigned max, bool force)
{
    if (!(h->ncq_busy | h->other_busy) || !max)
        return 0;
    uint32_t carried = h->done_mask, done = carried;
    /* Completions already known are handed out before the registers are looked at again:
     * a caller reaping one at a time (fio's default) costs no MMIO until they run out. */
    if (!carried && (force || sx_ioreq_guest_irq_level(h->g, h->info.irq_line))) {
        h->st.polls++;
        /* The usual causes are cleared blind (one MMIO write); only if the line stays up
         * (a task-file error, or anything else) is PxIS read. The write completes after the
         * device updated the line, so the level read next is current. */
        wr(h, P_IS, PIS_DHRS | PIS_PSS | PIS_SDBS);
        uint32_t is = 0;
        if (force || sx_ioreq_guest_irq_level(h->g, h->info.irq_line)) {
            is = rd(h, P_IS);
            if (is)
                wr(h, P_IS, is);
        }
        if (is & PIS_TFES) {
            for (unsigned n = 0; n < NSLOTS; n++)
                if (h->s[n].state == S_ISSUED && !(done & (1u << n)))
                    h->s[n].tfe = true;
        }
        uint32_t still = 0;
        if (h->ncq_busy)
            still |= rd(h, P_SACT);
        if (h->other_busy || (is & PIS_TFES))
            still |= rd(h, P_CI);
        if (h->io_error)
            return h->io_error;     /* reads of all ones are not completions */
        done |= (h->ncq_busy | h->other_busy) & ~still;
    }
    /* Completions carried over from an earlier call go first, so a slot that keeps being
     * reused and completing (the lowest free one) cannot starve them. */
    unsigned got = 0;
    uint32_t fresh = done & ~carried;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t *m = pass ? &fresh : &carried;
        while (*m && got < max) {
            unsigned n = (unsigned)__builtin_ctz(*m);
            *m &= *m - 1;
            struct hslot *s = &h->s[n];
            int res = slot_result(h, n);
            if (res < 0)
                h->st.errors++;
            cpl[got++] = (struct sx_hvmdisk_cpl){ s->cookie, res };
            s->state = S_FREE;
            h->ncq_busy &= ~(1u << n);
            h->other_busy &= ~(1u << n);
            h->free_mask |= 1u << n;
            h->st.completed++;
        }
    }
    h->done_mask = carried | fresh;
    return (int)got;
}

/* ---------------------------------------------------------------- submission */

int sx_hvmdisk_submit(struct sx_hvmdisk *h, enum sx_hvmdisk_op op, uint64_t off, void *buf,
                      size_t len, void *cookie)
{
    if (!h->free_mask)
        return -EAGAIN;
    uint64_t size = h->info.size_bytes;
    bool data = op == SX_HVMDISK_READ || op == SX_HVMDISK_WRITE;
    if (op != SX_HVMDISK_FLUSH) {
        if ((off | len) % SECTOR || !len || off > size || len > size - off)
            return -EINVAL;
        if (data && len > h->o.max_io)
            return -EINVAL;
    }
    unsigned n = (unsigned)__builtin_ctz(h->free_mask);
    struct hslot *s = &h->s[n];
    uint64_t lba = off / SECTOR;
    uint32_t count = (uint32_t)(len / SECTOR);
    bool ncq = h->info.ncq_depth > 1 && h->o.depth > 1;
    switch (op) {
    case SX_HVMDISK_READ:
    case SX_HVMDISK_WRITE: {
        bool w = op == SX_HVMDISK_WRITE;
        if (w)
            memcpy(bounce(h, n), buf, len);
        build(h, n, ncq ? (w ? 0x61 : 0x60) : (w ? 0x35 : 0x25), w, lba, count,
              (uint32_t)len, ncq);
        break;
    }
    case SX_HVMDISK_FLUSH:
        ncq = false;
        build(h, n, 0xea, false, 0, 0, 0, false);
        len = 0;
        break;
    case SX_HVMDISK_DISCARD: {
        /* One 512-byte block of ranges: 64 entries of up to 65535 sectors. */
        if (count > 64u * 65535u)
            return -EINVAL;
        uint8_t *r = bounce(h, n);
        memset(r, 0, SECTOR);
        for (unsigned i = 0; count; i++) {
            uint32_t c = count > 65535 ? 65535 : count;
            uint64_t e = lba | (uint64_t)c << 48;
            memcpy(r + 8 * i, &e, 8);
            lba += c;
            count -= c;
        }
        ncq = false;
        build(h, n, 0x06, true, 0, 1, SECTOR, false);
        len = 0;
        break;
    }
    default:
        return -EINVAL;
    }
    *s = (struct hslot){ .state = S_QUEUED, .op = op, .ncq = ncq, .buf = buf,
                         .bytes = (uint32_t)len, .cookie = cookie };
    h->free_mask &= ~(1u << n);
    h->fifo[h->fifo_n++] = (uint8_t)n;
    h->st.submitted++;
    return 0;
}

int sx_hvmdisk_kick(struct sx_hvmdisk *h)
{
    if (h->io_error)
        return h->io_error;
    uint32_t ncq = 0;
    unsigned i = 0;
    /* NCQ commands from the head of the queue go together; a non-queued command only when
     * the port is idle, and alone (ATA: no non-queued command while NCQ tags are active). */
    for (; i < h->fifo_n; i++) {
        unsigned n = h->fifo[i];
        if (h->s[n].ncq) {
            if (h->other_busy)
                break;
            ncq |= 1u << n;
            continue;
        }
        if (ncq || h->ncq_busy || h->other_busy)
            break;
        h->s[n].state = S_ISSUED;
        h->other_busy |= 1u << n;
        i++;
        h->st.kicks++;
        int rc = wr(h, P_CI, 1u << n);
        memmove(h->fifo, h->fifo + i, h->fifo_n - i);
        h->fifo_n -= i;
        return rc;
    }
    if (!ncq)
        return 0;
    for (unsigned k = 0; k < i; k++)
        h->s[h->fifo[k]].state = S_ISSUED;
    memmove(h->fifo, h->fifo + i, h->fifo_n - i);
    h->fifo_n -= i;
    h->ncq_busy |= ncq;
    h->st.kicks++;
    int rc = wr(h, P_SACT, ncq);
    if (rc == 0)
        rc = wr(h, P_CI, ncq);
    return rc;
}

int sx_hvmdisk_poll(struct sx_hvmdisk *h, struct sx_hvmdisk_cpl *cpl, unsigned max)
{
    int got = reap(h, cpl, max, false);
    if (got > 0 && h->fifo_n)
        sx_hvmdisk_kick(h);
    return got;
}

int sx_hvmdisk_wait(struct sx_hvmdisk *h, struct sx_hvmdisk_cpl *cpl, unsigned min,
                    unsigned max, int timeout_ms)
{
    int rc = sx_hvmdisk_kick(h);
    if (rc < 0)
        return rc;
    if (min > max)
        min = max;
    unsigned n = 0;
    int64_t end = timeout_ms < 0 ? INT64_MAX : (int64_t)sx_now_ms() + timeout_ms;
    while (n < min) {
        if (!(h->ncq_busy | h->other_busy) && !h->fifo_n)
            break;
        int got = sx_hvmdisk_poll(h, cpl + n, max - n);
        if (got < 0)
            return got;
        n += (unsigned)got;
        if (n >= min)
            break;
        int64_t t = (int64_t)sx_now_ms();
        if (t > end)
            break;
        /* Spin on the line (shared memory, no ioreq) before sleeping on its notification. */
        uint64_t spin_end = sx_now_ns() + (uint64_t)h->o.spin_us * 1000;
        bool up = false;
        while (!(up = sx_ioreq_guest_irq_level(h->g, h->info.irq_line)) && sx_now_ns() < spin_end)
            __builtin_ia32_pause();
        if (up)
            continue;
        h->st.irq_waits++;
        int w = sx_ioreq_guest_irq_wait(h->g, 100);
        if (w < 0 && w != -EINTR)
            return w;
        /* Belt and braces: look at the registers once a second whatever the line says. A
         * completion found that way after a quiet wait with the line down was a lost
         * interrupt (counted). */
        if ((int64_t)sx_now_ms() - h->last_force_ms > 1000) {
            h->last_force_ms = (int64_t)sx_now_ms();
            up = sx_ioreq_guest_irq_level(h->g, h->info.irq_line);
            uint32_t carried = h->done_mask;
            got = reap(h, cpl + n, max - n, true);
            if (got < 0)
                return got;
            if (got > 0) {
                h->st.forced++;
                if (w == 0 && !up && !carried) {
                    h->st.lost_irqs++;
                    sx_log_ratelimited(SX_LOG_WARN, "%d completions found without an "
                                       "interrupt", got);
                }
                n += (unsigned)got;
            }
        }
    }
    return (int)n;
}

unsigned sx_hvmdisk_busy(const struct sx_hvmdisk *h)
{
    return (unsigned)__builtin_popcount(h->ncq_busy | h->other_busy) + h->fifo_n;
}

int sx_hvmdisk_rw(struct sx_hvmdisk *h, enum sx_hvmdisk_op op, uint64_t off, void *buf,
                  size_t len)
{
    int rc = sx_hvmdisk_submit(h, op, off, buf, len, h);
    if (rc < 0)
        return rc;
    struct sx_hvmdisk_cpl c[NSLOTS];
    for (;;) {
        int got = sx_hvmdisk_wait(h, c, 1, NSLOTS, h->o.timeout_ms);
        if (got < 0)
            return got;
        if (got == 0)
            return -ETIMEDOUT;
        for (int i = 0; i < got; i++)
            if (c[i].cookie == h)
                return c[i].res < 0 ? c[i].res : 0;
    }
}

/* ---------------------------------------------------------------- bring-up */

static void ata_string(char *dst, const uint16_t *w, unsigned words)
{
    for (unsigned i = 0; i < words; i++) {
        dst[2 * i] = (char)(w[i] >> 8);
        dst[2 * i + 1] = (char)w[i];
    }
    dst[2 * words] = 0;
    for (int i = (int)(2 * words) - 1; i >= 0 && dst[i] == ' '; i--)
        dst[i] = 0;
}

static int find_function(struct sx_hvmdisk *h)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id = 0, cls = 0;
        int rc = sx_ioreq_pci_cfg_read(h->g, 0, (uint8_t)dev, 0, 0, 4, &id);
        if (rc < 0)
            return rc;
        sx_debug("00:%02x.0 id %08x", dev, id);
        if (id != 0x29228086)
            continue;
        sx_ioreq_pci_cfg_read(h->g, 0, (uint8_t)dev, 0, 8, 4, &cls);
        if ((cls >> 8) != 0x010601)
            continue;
        h->info.devfn = (uint8_t)(dev << 3);
        return (int)dev;
    }
    return -ENODEV;
}

static int bring_up(struct sx_hvmdisk *h)
{
    int dev = find_function(h);
    if (dev < 0) {
        sx_warn("no AHCI function (8086:2922 class 010601) on bus 0: %s", strerror(-dev));
        return dev;
    }
    /* ABAR in BAR5 (offset 0x24); memory decoding, bus mastering, INTx on. */
    int rc = sx_ioreq_pci_cfg_write(h->g, 0, (uint8_t)dev, 0, 0x24, 4, (uint32_t)h->info.abar);
    if (rc == 0)
        rc = sx_ioreq_pci_cfg_write(h->g, 0, (uint8_t)dev, 0, 0x04, 2, 0x0006);
    if (rc < 0)
        return rc;
    uint32_t bar = 0;
    sx_ioreq_pci_cfg_read(h->g, 0, (uint8_t)dev, 0, 0x24, 4, &bar);
    if ((bar & ~0xfu) != (uint32_t)h->info.abar)
        return -EIO;
    h->info.irq_line = sx_ioreq_pci_intx_gsi((unsigned)dev, 0);

    if ((rc = wr(h, HBA_GHC, 1u << 31 | 1u)) < 0)       /* AE | HR */
        return rc;
    if ((rc = wait_reg(h, HBA_GHC, 1, 0)) < 0)
        return rc;
    wr(h, HBA_GHC, 1u << 31);
    uint32_t cap = rd(h, HBA_CAP);
    if (!(rd(h, HBA_PI) & 1)) {
        sx_warn("AHCI port 0 not implemented (PI %#x)", rd(h, HBA_PI));
        return -ENODEV;
    }
    unsigned ncs = ((cap >> 8) & 0x1f) + 1;
    /* Port 0 idle: ST off (CR follows), FRE off (FR follows). */
    uint32_t cmd = rd(h, P_CMD);
    if (cmd & 1) {
        wr(h, P_CMD, cmd & ~1u);
        if ((rc = wait_reg(h, P_CMD, 1u << 15, 0)) < 0)
            return rc;
    }
    cmd = rd(h, P_CMD);
    if (cmd & (1u << 4)) {
        wr(h, P_CMD, cmd & ~(1u << 4));
        if ((rc = wait_reg(h, P_CMD, 1u << 14, 0)) < 0)
            return rc;
    }
    wr(h, P_CLB, (uint32_t)h->gpa);
    wr(h, P_CLBU, (uint32_t)(h->gpa >> 32));
    wr(h, P_FB, (uint32_t)(h->gpa + 0x400));
    wr(h, P_FBU, (uint32_t)((h->gpa + 0x400) >> 32));
    wr(h, P_CMD, (rd(h, P_CMD) | (1u << 4)) & ~1u);   /* FRE */
    if ((rd(h, P_SSTS) & 0xf) != 3) {                  /* no link: COMRESET */
        wr(h, P_SCTL, 1);
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
        wr(h, P_SCTL, 0);
        if ((rc = wait_reg(h, P_SSTS, 0xf, 3)) < 0) {
            sx_warn("AHCI port 0: no link after COMRESET (SSTS %#x)", rd(h, P_SSTS));
            return -ENODEV;
        }
    }
    if ((rc = wait_reg(h, P_TFD, 0x88, 0)) < 0)        /* not BSY, not DRQ */
        return rc;
    if (rd(h, P_SIG) != 0x00000101) {
        sx_warn("AHCI port 0: not an ATA disk (SIG %#x)", rd(h, P_SIG));
        return -ENODEV;
    }
    wr(h, P_SERR, UINT32_MAX);
    wr(h, P_IS, UINT32_MAX);
    wr(h, P_IE, PIS_DHRS | PIS_PSS | PIS_SDBS | PIS_TFES);
    wr(h, HBA_GHC, 1u << 31 | 1u << 1);               /* AE | IE */
    wr(h, P_CMD, rd(h, P_CMD) | 1u);                  /* ST */
    if (!(rd(h, P_CMD) & (1u << 15)))
        return -EIO;
    h->started = true;

    /* IDENTIFY DEVICE through slot 0 into its bounce buffer (PIO data-in). */
    h->free_mask = 1;
    build(h, 0, 0xec, false, 0, 0, SECTOR, false);
    memset(bounce(h, 0), 0, SECTOR);
    h->s[0] = (struct hslot){ .state = S_ISSUED, .op = SX_HVMDISK_READ, .bytes = SECTOR };
    h->free_mask = 0;
    h->other_busy = 1;
    wr(h, P_CI, 1);
    struct sx_hvmdisk_cpl c;
    int got = 0;
    int64_t end = (int64_t)sx_now_ms() + h->o.timeout_ms;
    while (got == 0 && (int64_t)sx_now_ms() < end) {
        got = reap(h, &c, 1, true);
        if (got == 0) {
            struct timespec ts = { 0, 100 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    if (got <= 0)
        return -ETIMEDOUT;
    if (c.res < 0)
        return -EIO;
    uint16_t w[256];
    memcpy(w, bounce(h, 0), sizeof(w));
    if (w[83] & (1 << 10))
        h->info.sectors = w[100] | (uint64_t)w[101] << 16 | (uint64_t)w[102] << 32 |
                          (uint64_t)w[103] << 48;
    else
        h->info.sectors = w[60] | (uint64_t)w[61] << 16;
    h->info.sector_size = SECTOR;
    h->info.size_bytes = h->info.sectors * SECTOR;
    h->info.ncq_depth = (cap & (1u << 30)) && (w[76] & (1 << 8)) ? (w[75] & 0x1f) + 1u : 1u;
    if (h->info.ncq_depth > ncs)
        h->info.ncq_depth = ncs;
    ata_string(h->info.serial, &w[10], 10);
    ata_string(h->info.firmware, &w[23], 4);
    ata_string(h->info.model, &w[27], 20);
    unsigned depth = h->o.depth;
    if (depth > h->info.ncq_depth)
        depth = h->info.ncq_depth;
    if (depth > ncs)
        depth = ncs;
    h->info.depth = depth;
    h->free_mask = depth >= 32 ? UINT32_MAX : (1u << depth) - 1;
    return 0;
}

void sx_hvmdisk_opts_default(struct sx_hvmdisk_opts *o)
{
    *o = (struct sx_hvmdisk_opts){ .dm_domid = 0, .abar = 0xf0100000, .depth = NSLOTS,
                                   .max_io = 128 * 1024, .timeout_ms = 5000, .spin_us = 20 };
}

int sx_hvmdisk_open(struct sx_hvmdisk **out, struct sx_plat *p, const struct sx_hvmdisk_opts *o)
{
    struct sx_hvmdisk *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    sx_hvmdisk_opts_default(&h->o);
    if (o) {
        h->o.dm_domid = o->dm_domid;
        if (o->abar)
            h->o.abar = o->abar;
        if (o->depth)
            h->o.depth = o->depth > NSLOTS ? NSLOTS : o->depth;
        if (o->max_io)
            h->o.max_io = o->max_io;
        if (o->timeout_ms)
            h->o.timeout_ms = o->timeout_ms;
        h->o.spin_us = o->spin_us;
    }
    int rc = -EINVAL;
    if (h->o.max_io % 4096 || h->o.max_io > PRD_MAX * CT_MAX_PRD || h->o.abar % 4096)
        goto fail;
    h->info.abar = h->o.abar;
    h->plat = p;
    rc = sx_ioreq_guest_open(&h->g, p, h->o.dm_domid);
    if (rc < 0)
        goto fail;
    sx_ioreq_guest_set_timeout(h->g, h->o.timeout_ms);
    /* Bounce buffers for the slots in use; fewer slots when guest memory is short. */
    void *va;
    for (;;) {
        h->pages = 3 + (uint32_t)(h->o.depth * h->o.max_io / 4096);
        rc = sx_ioreq_guest_mem_alloc(h->g, h->pages, &h->gpa, &va);
        if (rc == 0 || h->o.depth == 1)
            break;
        h->o.depth /= 2;
    }
    if (rc < 0)
        goto fail;
    if (h->o.depth < NSLOTS && (!o || !o->depth || o->depth > h->o.depth))
        sx_info("%u slots of %zu bytes fit in guest memory", h->o.depth, h->o.max_io);
    h->va = va;
    memset(h->va, 0, 3 * 4096);
    rc = bring_up(h);
    if (rc < 0)
        goto fail;
    *out = h;
    return 0;
fail:
    sx_hvmdisk_close(h);
    return rc;
}

void sx_hvmdisk_close(struct sx_hvmdisk *h)
{
    if (!h)
        return;
    sx_info("%llu submitted, %llu completed, %llu errors, %llu mmio, %llu polls, %llu irq waits, "
            "%llu forced finds, %llu lost interrupts", (unsigned long long)h->st.submitted,
            (unsigned long long)h->st.completed, (unsigned long long)h->st.errors,
            (unsigned long long)h->st.mmio, (unsigned long long)h->st.polls,
            (unsigned long long)h->st.irq_waits, (unsigned long long)h->st.forced,
            (unsigned long long)h->st.lost_irqs);
    if (h->g && h->started && !h->io_error) {
        /* Stop the port (the device drops whatever is in flight) and its FIS receive. */
        uint32_t cmd = rd(h, P_CMD);
        wr(h, P_CMD, cmd & ~1u);
        wait_reg(h, P_CMD, 1u << 15, 0);
        wr(h, P_CMD, rd(h, P_CMD) & ~(1u << 4));
        wait_reg(h, P_CMD, 1u << 14, 0);
    }
    if (h->g && h->va)
        sx_ioreq_guest_mem_free(h->g, h->gpa, h->pages);
    sx_ioreq_guest_close(h->g);
    free(h);
}

const struct sx_hvmdisk_info *sx_hvmdisk_info(const struct sx_hvmdisk *h) { return &h->info; }
const struct sx_hvmdisk_stats *sx_hvmdisk_stats(const struct sx_hvmdisk *h) { return &h->st; }

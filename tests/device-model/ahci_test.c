/*
 * The AHCI controller driven through the dispatcher (sx_dm_read/write, PCI config) with a sim
 * HVM domain's memory behind an ioreq server for DMA: the test writes command lists, tables
 * and PRDTs straight into guest memory. Covers ABAR sizing, HBA reset, the ST/CR and FRE/FR
 * handshakes, IDENTIFY through the PIO setup FIS, READ/WRITE DMA EXT through the image file
 * (scattered, odd-sized PRDs), NCQ with several tags on an asynchronous engine, FLUSH, TRIM,
 * the interrupt and PxIS write-one-to-clear, and hostile commands (PRD outside memory, huge
 * PRDTL, bogus CFL, LBA past the end, a queued command on a tag not set in PxSACT, PxCI
 * while stopped, a command list outside memory): each fails alone and the next one works.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkio/blkio_impl.h"
#include "device-model/ahci/ahci.h"
#include "device-model/dm.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"

#define ABAR 0xf0100000ull
#define DISK_SECTORS 16384u          /* 8 MiB image */

/* Guest-physical layout used by the tests. */
#define G_BASE 0x100000ull
#define G_CLB (G_BASE)
#define G_FB (G_BASE + 0x400)
#define G_CT(n) (G_BASE + 0x1000 + (uint64_t)(n) * 0x100)
#define G_DATA (G_BASE + 0x10000)
#define G_LEN 0x200000ull

static struct simenv env;
static struct sx_plat *plat0;
static domid_t hvm;
static uint64_t mem_size;
static char img[64];

static struct sx_dm *dm;
static struct sx_ioreq *srv;
static struct sx_ahci *ahci;
static uint8_t *g;                   /* guest memory at G_BASE */
static unsigned dev;                 /* PCI slot of the controller */

static uint32_t cfg_read(unsigned reg, unsigned size)
{
    return sx_dm_pci_cfg_read(dm, 0, (uint8_t)(dev << 3), (uint16_t)reg, size);
}
static void cfg_write(unsigned reg, uint32_t v, unsigned size)
{
    sx_dm_pci_cfg_write(dm, 0, (uint8_t)(dev << 3), (uint16_t)reg, v, size);
}
static uint32_t rd(unsigned off) { return (uint32_t)sx_dm_read(dm, IOREQ_TYPE_COPY, ABAR + off, 4); }
static void wr(unsigned off, uint32_t v) { sx_dm_write(dm, IOREQ_TYPE_COPY, ABAR + off, v, 4); }
static uint8_t *gp(uint64_t gpa) { return g + (gpa - G_BASE); }
static uint32_t g32(uint64_t gpa) { uint32_t v; memcpy(&v, gp(gpa), 4); return v; }
static void p32(uint64_t gpa, uint32_t v) { memcpy(gp(gpa), &v, 4); }

#define P(x) (0x100 + (x))
#define PCLB P(0x00)
#define PCLBU P(0x04)
#define PFB P(0x08)
#define PFBU P(0x0c)
#define PIS P(0x10)
#define PIE P(0x14)
#define PCMD P(0x18)
#define PTFD P(0x20)
#define PSIG P(0x24)
#define PSSTS P(0x28)
#define PSCTL P(0x2c)
#define PSERR P(0x30)
#define PSACT P(0x34)
#define PCI P(0x38)

/* ---- an engine standing in for a device that stops answering ----
 * sx_bio_open is wrapped at link time (-Wl,--wrap=sx_bio_open): with fake_next set, the next
 * controller gets this engine. Its operations run "in the kernel" from submission on, never
 * complete on their own and cannot be cancelled; fake_complete() later completes the reads as
 * the kernel would, writing into the buffers their iovec arrays name. */
int __real_sx_bio_open(struct sx_bio **out, enum sx_bio_kind kind, int fd, unsigned depth,
                       unsigned flags);
static bool fake_next;
static struct fake_op { const struct iovec *iov; int iovcnt; bool write; } fk_ops[64];
static unsigned fk_n, fk_cancels;

static int fk_open(struct sx_bio *b, unsigned flags) { return 0; }
static void fk_close(struct sx_bio *b) {}    /* the kernel keeps running what it has */
static int fk_queue(struct sx_bio *b, const struct sx_bio_op *op)
{
    if (fk_n == 64)
        return -EAGAIN;
    fk_ops[fk_n++] = (struct fake_op){ op->iov, op->iovcnt, op->opc == SX_BIO_OP_WRITE };
    return 0;
}
static int fk_submit(struct sx_bio *b) { return (int)b->queued; }
static int fk_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max) { return 0; }
static bool fk_ready(struct sx_bio *b) { return false; }
static void fk_cancel(struct sx_bio *b) { fk_cancels++; }
static const struct sx_bio_ops fake_ops = {
    .open = fk_open, .close = fk_close, .queue = fk_queue, .submit = fk_submit,
    .reap = fk_reap, .ready = fk_ready, .cancel = fk_cancel,
};

int __wrap_sx_bio_open(struct sx_bio **out, enum sx_bio_kind kind, int fd, unsigned depth,
                       unsigned flags);
int __wrap_sx_bio_open(struct sx_bio **out, enum sx_bio_kind kind, int fd, unsigned depth,
                       unsigned flags)
{
    if (!fake_next)
        return __real_sx_bio_open(out, kind, fd, depth, flags);
    fake_next = false;
    fk_n = fk_cancels = 0;
    return sx_bio_open_ops(out, &fake_ops, SX_BIO_URING, fd, depth, flags);
}

/* The device answers at last: every read lands in its buffers. */
static void fake_complete(uint8_t fill)
{
    for (unsigned i = 0; i < fk_n; i++)
        for (int k = 0; !fk_ops[i].write && k < fk_ops[i].iovcnt; k++)
            memset(fk_ops[i].iov[k].iov_base, fill, fk_ops[i].iov[k].iov_len);
    fk_n = 0;
}

static void open_dev(enum sx_bio_kind kind)
{
    CU_ASSERT_FATAL(sx_dm_open(&dm, hvm) == 0);
    CU_ASSERT_FATAL(sx_dm_pci_host_add(dm) == 0);
    struct sx_ahci_cfg c = { .path = img, .devfn = -1, .engine = kind, .serial = "SXTEST01" };
    CU_ASSERT_FATAL(sx_ahci_add(dm, &c, &ahci) == 0);
    dev = sx_pci_devfn(sx_ahci_pci(ahci)) >> 3;
    struct sx_ioreq_opts o = { .domid = hvm, .handler = sx_dm_ioreq_handler, .opaque = dm };
    CU_ASSERT_FATAL(sx_ioreq_open(&srv, plat0, &o) == 0);
    CU_ASSERT_FATAL(sx_dm_set_ioreq(dm, srv) == 0);
    g = sx_ioreq_dma_map(srv, G_BASE, G_LEN, true);
    CU_ASSERT_FATAL(g != NULL);
    memset(g, 0, G_LEN);
}

static void close_dev(void)
{
    sx_ioreq_dma_unmap(srv, g, G_LEN);
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(srv);
    dm = NULL;
    srv = NULL;
    ahci = NULL;
}

/* Firmware and driver bring-up: ABAR placed, memory + bus master on, port started. */
static void bring_up(void)
{
    cfg_write(0x24, (uint32_t)ABAR, 4);
    cfg_write(0x04, 0x6, 2);
    wr(0x04, 1u << 31 | 1);                      /* HR */
    wr(PCLB, (uint32_t)G_CLB);
    wr(PCLBU, 0);
    wr(PFB, (uint32_t)G_FB);
    wr(PFBU, 0);
    wr(PCMD, rd(PCMD) | (1u << 4));              /* FRE */
    wr(PIS, UINT32_MAX);
    wr(PIE, 0x4000000b);                         /* TFES, SDBS, PSS, DHRS */
    wr(0x04, 1u << 31 | 2);                      /* AE | IE */
    wr(PCMD, rd(PCMD) | 1);                      /* ST */
    CU_ASSERT(rd(PCMD) & (1u << 15));
}

struct prd { uint64_t gpa; uint32_t len; };

/* Command header + table for slot n: an H2D FIS and PRDs. */
static void build(unsigned n, uint8_t cmd, bool write, uint64_t lba, uint32_t count,
                  const struct prd *prds, unsigned nprd, unsigned prdtl_override, unsigned cfl)
{
    uint8_t *t = gp(G_CT(n));
    memset(t, 0, 0x100);
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
    if (cmd == 0x60 || cmd == 0x61) {
        t[3] = (uint8_t)count;
        t[11] = (uint8_t)(count >> 8);
        t[12] = (uint8_t)(n << 3);
    } else {
        t[12] = (uint8_t)count;
        t[13] = (uint8_t)(count >> 8);
        if (cmd == 0x06)
            t[3] = 1;
    }
    for (unsigned i = 0; i < nprd; i++) {
        p32(G_CT(n) + 0x80 + i * 16, (uint32_t)prds[i].gpa);
        p32(G_CT(n) + 0x84 + i * 16, (uint32_t)(prds[i].gpa >> 32));
        p32(G_CT(n) + 0x8c + i * 16, prds[i].len - 1);
    }
    unsigned prdtl = prdtl_override ? prdtl_override : nprd;
    p32(G_CLB + n * 32, cfl | (write ? 1u << 6 : 0) | (uint32_t)prdtl << 16);
    p32(G_CLB + n * 32 + 4, 0xdeadbeef);         /* PRDBC: the device overwrites it */
    p32(G_CLB + n * 32 + 8, (uint32_t)G_CT(n));
    p32(G_CLB + n * 32 + 12, 0);
}

static uint32_t prdbc(unsigned n) { return g32(G_CLB + n * 32 + 4); }
static bool irq_pending(void) { return cfg_read(0x06, 2) & 0x8; }

/* Pump the engine until PxCI and PxSACT drain (asynchronous engines). */
static bool drain(void)
{
    for (int i = 0; i < 500 && (rd(PCI) | rd(PSACT)); i++)
        sx_ahci_poll(ahci, 10);
    return (rd(PCI) | rd(PSACT)) == 0;
}

/* Issue slot n (non-queued) and check it completed ok or with an error. */
static void issue_expect(unsigned n, bool ok)
{
    wr(PIS, UINT32_MAX);
    wr(PCI, 1u << n);
    CU_ASSERT(drain());
    uint32_t is = rd(PIS);
    if (ok) {
        CU_ASSERT_FALSE(is & (1u << 30));
        CU_ASSERT_EQUAL(rd(PTFD) & 0x89, 0);
    } else {
        CU_ASSERT(is & (1u << 30));              /* TFES */
        CU_ASSERT_EQUAL(rd(PTFD) & 0x01, 0x01);  /* ERR */
        CU_ASSERT(rd(PTFD) >> 8 & 0x04);         /* ABRT */
        CU_ASSERT_EQUAL(prdbc(n), 0);
    }
}

/* ---- tests ---- */

static void test_identity_and_abar_sizing(void)
{
    open_dev(SX_BIO_SYNC);
    CU_ASSERT_EQUAL(cfg_read(0, 4), 0x29228086);
    CU_ASSERT_EQUAL(cfg_read(0x08, 4) >> 8, 0x010601);
    CU_ASSERT_EQUAL(cfg_read(0x3d, 1), 1);                /* INTA# */
    cfg_write(0x24, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(0x24, 4), 0xfffff000);       /* 4 KiB, 32-bit memory */
    cfg_write(0x10, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(0x10, 4), 0);                /* no other BARs */
    CU_ASSERT_EQUAL(rd(0x00), UINT32_MAX);                /* not decoding yet */
    cfg_write(0x24, (uint32_t)ABAR, 4);
    cfg_write(0x04, 0x2, 2);
    uint32_t cap = rd(0x00);
    CU_ASSERT_EQUAL(cap & 0x1f, 0);                       /* one port */
    CU_ASSERT_EQUAL((cap >> 8) & 0x1f, 31);               /* 32 slots */
    CU_ASSERT(cap & (1u << 30));                          /* NCQ */
    CU_ASSERT(cap & (1u << 31));                          /* 64-bit */
    CU_ASSERT(cap & (1u << 18));                          /* AHCI only */
    CU_ASSERT_EQUAL(rd(0x0c), 1);                         /* PI */
    CU_ASSERT_EQUAL(rd(0x10), 0x00010000);                /* VS 1.0 */
    CU_ASSERT_EQUAL(rd(0x04), 1u << 31);                  /* GHC.AE */
    CU_ASSERT_EQUAL(rd(PSIG), 0x00000101);
    CU_ASSERT_EQUAL(rd(PSSTS) & 0xf, 3);
    CU_ASSERT_EQUAL(sx_ahci_sectors(ahci), DISK_SECTORS);
    /* Byte reads of a register. */
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, ABAR + 0x12, 2), 0x0001);
    close_dev();
}

static void test_hba_reset(void)
{
    open_dev(SX_BIO_SYNC);
    cfg_write(0x24, (uint32_t)ABAR, 4);
    cfg_write(0x04, 0x6, 2);
    wr(0x04, 1u << 31 | 2);
    wr(PIE, 0x1);
    wr(PSCTL, 0x300);
    CU_ASSERT_EQUAL(rd(0x04), (1u << 31) | 2);
    wr(0x04, 1u << 31 | 1);
    CU_ASSERT_EQUAL(rd(0x04), 1u << 31);                  /* HR self-clears, IE reset */
    CU_ASSERT_EQUAL(rd(PIE), 0);
    CU_ASSERT_EQUAL(rd(PSCTL), 0);
    CU_ASSERT_EQUAL(rd(PCMD), 0x6);                       /* SUD | POD */
    CU_ASSERT_EQUAL(rd(PSIG), 0x00000101);
    CU_ASSERT_EQUAL(rd(PSSTS), 0x123);
    CU_ASSERT_EQUAL(rd(PTFD) & 0x88, 0);                  /* not busy */
    CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->resets, 1);
    /* COMRESET through PxSCTL.DET: link down while asserted, up again after. */
    wr(PSCTL, 1);
    CU_ASSERT_EQUAL(rd(PSSTS) & 0xf, 0);
    wr(PSCTL, 0);
    CU_ASSERT_EQUAL(rd(PSSTS) & 0xf, 3);
    close_dev();
}

static void test_port_start_stop(void)
{
    open_dev(SX_BIO_SYNC);
    cfg_write(0x24, (uint32_t)ABAR, 4);
    cfg_write(0x04, 0x6, 2);
    wr(PCLB, (uint32_t)G_CLB | 0x3ff);                    /* low bits are reserved */
    CU_ASSERT_EQUAL(rd(PCLB), (uint32_t)G_CLB);
    wr(PFB, (uint32_t)G_FB);
    memset(gp(G_FB), 0xee, 256);
    wr(PCMD, rd(PCMD) | (1u << 4));
    CU_ASSERT(rd(PCMD) & (1u << 14));                     /* FR follows FRE */
    /* The disk's first D2H FIS carries its signature. */
    CU_ASSERT_EQUAL(gp(G_FB + 0x40)[0], 0x34);
    CU_ASSERT_EQUAL(gp(G_FB + 0x40)[4], 1);
    CU_ASSERT_EQUAL(gp(G_FB + 0x40)[12], 1);
    CU_ASSERT(rd(PIS) & 1);
    wr(PCMD, rd(PCMD) | 1);
    CU_ASSERT(rd(PCMD) & (1u << 15));                     /* CR follows ST */
    wr(PCLB, 0x5000);                                     /* ignored while running */
    CU_ASSERT_EQUAL(rd(PCLB), (uint32_t)G_CLB);
    wr(PCMD, rd(PCMD) & ~1u);
    CU_ASSERT_FALSE(rd(PCMD) & (1u << 15));
    wr(PCMD, rd(PCMD) & ~(1u << 4));
    CU_ASSERT_FALSE(rd(PCMD) & (1u << 14));
    wr(PFB, 0x6000);                                      /* writable once FR is clear */
    CU_ASSERT_EQUAL(rd(PFB), 0x6000);
    close_dev();
}

static uint16_t idw(const uint8_t *b, unsigned w) { return (uint16_t)(b[2 * w] | b[2 * w + 1] << 8); }

static void test_identify_and_interrupt(void)
{
    open_dev(SX_BIO_SYNC);
    bring_up();
    wr(PIS, UINT32_MAX);
    CU_ASSERT_FALSE(irq_pending());
    struct prd p = { G_DATA, 512 };
    memset(gp(G_DATA), 0, 512);
    build(0, 0xec, false, 0, 0, &p, 1, 0, 5);
    wr(PCI, 1);
    CU_ASSERT_EQUAL(rd(PCI), 0);
    CU_ASSERT_EQUAL(prdbc(0), 512);
    CU_ASSERT(rd(PIS) & (1u << 1));                       /* PSS */
    CU_ASSERT_EQUAL(gp(G_FB + 0x20)[0], 0x5f);            /* PIO setup FIS */
    CU_ASSERT_EQUAL(gp(G_FB + 0x20)[15] & 0x89, 0);       /* E_Status: no BSY/DRQ/ERR */
    CU_ASSERT_EQUAL(idw(gp(G_FB + 0x20), 8), 512);        /* transfer count */
    const uint8_t *b = gp(G_DATA);
    CU_ASSERT(idw(b, 49) & (1 << 9));                     /* LBA */
    CU_ASSERT(idw(b, 49) & (1 << 8));                     /* DMA */
    CU_ASSERT(idw(b, 83) & (1 << 10));                    /* LBA48 */
    CU_ASSERT(idw(b, 83) & (1 << 13));                    /* FLUSH CACHE EXT */
    CU_ASSERT_EQUAL(idw(b, 75), 31);                      /* queue depth 32 */
    CU_ASSERT(idw(b, 76) & (1 << 8));                     /* NCQ */
    CU_ASSERT_EQUAL(idw(b, 100) | (uint32_t)idw(b, 101) << 16, DISK_SECTORS);
    CU_ASSERT_EQUAL(idw(b, 102) | idw(b, 103), 0);
    CU_ASSERT_EQUAL(idw(b, 60) | (uint32_t)idw(b, 61) << 16, DISK_SECTORS);
    CU_ASSERT_EQUAL(idw(b, 88) & 0x3f, 0x3f);             /* UDMA 0-5 */
    CU_ASSERT_EQUAL(idw(b, 106), 0x4000);                 /* 512-byte sectors */
    CU_ASSERT(idw(b, 169) & 1);                           /* TRIM */
    /* ATA strings: byte-swapped words, space padded. */
    char model[41];
    for (unsigned i = 0; i < 20; i++) {
        model[2 * i] = (char)b[2 * (27 + i) + 1];
        model[2 * i + 1] = (char)b[2 * (27 + i)];
    }
    model[40] = 0;
    CU_ASSERT_EQUAL(strncmp(model, "splitxen AHCI disk  ", 20), 0);
    CU_ASSERT_EQUAL(b[20], 'X');                          /* serial "SXTEST01": 'S','X' swapped */
    CU_ASSERT_EQUAL(b[21], 'S');
    /* Interrupt: raised by the completion, PxIS write-one-to-clear drops it. */
    CU_ASSERT(irq_pending());
    CU_ASSERT_EQUAL(rd(0x08), 1);                         /* HBA IS: port 0 */
    wr(PIS, 1u << 0);                                     /* another bit: still pending */
    CU_ASSERT(irq_pending());
    wr(PIS, rd(PIS));
    CU_ASSERT_EQUAL(rd(PIS), 0);
    CU_ASSERT_FALSE(irq_pending());
    CU_ASSERT_EQUAL(rd(0x08), 0);
    /* GHC.IE off: status still set, no interrupt. */
    wr(0x04, 1u << 31);
    build(1, 0xec, false, 0, 0, &p, 1, 0, 5);
    wr(PCI, 2);
    CU_ASSERT(rd(PIS) & 2);
    CU_ASSERT_FALSE(irq_pending());
    wr(0x04, 1u << 31 | 2);
    CU_ASSERT(irq_pending());
    CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->identifies, 2);
    close_dev();
}

static int img_fd(void) { return open(img, O_RDONLY); }

static void test_dma_ext_round_trip(void)
{
    open_dev(SX_BIO_SYNC);
    bring_up();
    /* 8 sectors from three scattered, odd-sized buffers. */
    struct prd w[3] = { { G_DATA + 0x1000, 1024 }, { G_DATA + 0x3208, 2048 },
                        { G_DATA + 0x5000, 1024 } };
    uint8_t pat[4096];
    for (unsigned i = 0; i < sizeof(pat); i++)
        pat[i] = (uint8_t)(i * 7 + 3);
    memcpy(gp(w[0].gpa), pat, 1024);
    memcpy(gp(w[1].gpa), pat + 1024, 2048);
    memcpy(gp(w[2].gpa), pat + 3072, 1024);
    build(3, 0x35, true, 100, 8, w, 3, 0, 5);
    issue_expect(3, true);
    CU_ASSERT_EQUAL(prdbc(3), 4096);
    CU_ASSERT(rd(PIS) & 1);                               /* D2H register FIS */
    CU_ASSERT_EQUAL(gp(G_FB + 0x40)[0], 0x34);
    CU_ASSERT_EQUAL(gp(G_FB + 0x40)[2] & 0x89, 0);
    uint8_t back[4096];
    int fd = img_fd();
    CU_ASSERT_EQUAL(pread(fd, back, 4096, 100 * 512), 4096);
    close(fd);
    CU_ASSERT_EQUAL(memcmp(back, pat, 4096), 0);
    /* Read back into one buffer. */
    struct prd r = { G_DATA + 0x8000, 4096 };
    memset(gp(r.gpa), 0, 4096);
    build(4, 0x25, false, 100, 8, &r, 1, 0, 5);
    issue_expect(4, true);
    CU_ASSERT_EQUAL(memcmp(gp(r.gpa), pat, 4096), 0);
    /* A PRDT longer than the transfer: only what is needed moves. */
    struct prd big = { G_DATA + 0x10000, 65536 };
    memset(gp(big.gpa), 0x5a, 65536);
    build(5, 0x25, false, 101, 1, &big, 1, 0, 5);
    issue_expect(5, true);
    CU_ASSERT_EQUAL(prdbc(5), 512);
    CU_ASSERT_EQUAL(memcmp(gp(big.gpa), pat + 512, 512), 0);
    CU_ASSERT_EQUAL(gp(big.gpa)[512], 0x5a);
    /* LBA28 READ DMA as well. */
    build(6, 0xc8, false, 100, 1, &r, 1, 0, 5);
    issue_expect(6, true);
    const struct sx_ahci_stats *st = sx_ahci_stats(ahci);
    CU_ASSERT_EQUAL(st->writes, 1);
    CU_ASSERT_EQUAL(st->reads, 3);
    CU_ASSERT_EQUAL(st->bytes_written, 4096);
    CU_ASSERT_EQUAL(st->failed, 0);
    /* O_DIRECT: the write with a PRD off the DMA alignment went through a bounce buffer. */
    if (sx_ahci_direct(ahci))
        CU_ASSERT_EQUAL(st->bounced, 1);
    close_dev();
}

static void test_ncq_several_tags(void)
{
    open_dev(SX_BIO_AUTO);
    bring_up();
    const unsigned tags = 8;
    for (unsigned t = 0; t < tags; t++) {
        struct prd p = { G_DATA + t * 0x2000, 4096 };
        memset(gp(p.gpa), 0x10 + t, 4096);
        build(t, 0x61, true, 1000 + t * 8, 8, &p, 1, 0, 5);
    }
    wr(PIS, UINT32_MAX);
    wr(PSACT, (1u << tags) - 1);
    wr(PCI, (1u << tags) - 1);
    CU_ASSERT_EQUAL(rd(PCI), 0);                          /* queued commands accepted */
    CU_ASSERT(drain());
    CU_ASSERT(rd(PIS) & (1u << 3));                       /* SDBS */
    CU_ASSERT_FALSE(rd(PIS) & (1u << 30));
    CU_ASSERT_EQUAL(gp(G_FB + 0x58)[0], 0xa1);            /* set device bits FIS */
    for (unsigned t = 0; t < tags; t++)
        CU_ASSERT_EQUAL(prdbc(t), 4096);
    /* Read them back through other tags, out of order with the writes. */
    for (unsigned t = 0; t < tags; t++) {
        struct prd p = { G_DATA + 0x40000 + t * 0x2000, 4096 };
        memset(gp(p.gpa), 0, 4096);
        build(31 - t, 0x60, false, 1000 + (tags - 1 - t) * 8, 8, &p, 1, 0, 5);
    }
    uint32_t mask = 0xffu << 24;
    wr(PSACT, mask);
    wr(PCI, mask);
    CU_ASSERT(drain());
    for (unsigned t = 0; t < tags; t++) {
        uint8_t *b = gp(G_DATA + 0x40000 + t * 0x2000);
        CU_ASSERT_EQUAL(b[0], 0x10 + (tags - 1 - t));
        CU_ASSERT_EQUAL(b[4095], 0x10 + (tags - 1 - t));
    }
    CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->ncq, 2 * tags);
    CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->failed, 0);
    CU_ASSERT_EQUAL(sx_ahci_inflight(ahci), 0);
    close_dev();
}

static void test_flush_and_trim(void)
{
    open_dev(SX_BIO_SYNC);
    bring_up();
    build(0, 0xea, false, 0, 0, NULL, 0, 0, 5);
    issue_expect(0, true);
    build(1, 0xe7, false, 0, 0, NULL, 0, 0, 5);
    issue_expect(1, true);
    CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->flushes, 2);
    /* Write a sector, trim it, read zeros back. */
    struct prd p = { G_DATA, 512 };
    memset(gp(G_DATA), 0x77, 512);
    build(2, 0x35, true, 2048, 1, &p, 1, 0, 5);
    issue_expect(2, true);
    struct prd rl = { G_DATA + 0x1000, 512 };
    memset(gp(rl.gpa), 0, 512);
    uint64_t e = 2048 | (uint64_t)8 << 48;               /* LBA 2048, 8 sectors */
    memcpy(gp(rl.gpa), &e, 8);
    build(3, 0x06, true, 0, 1, &rl, 1, 0, 5);
    issue_expect(3, true);
    build(4, 0x25, false, 2048, 1, &p, 1, 0, 5);
    issue_expect(4, true);
    CU_ASSERT_EQUAL(gp(G_DATA)[0], 0);
    CU_ASSERT_EQUAL(gp(G_DATA)[511], 0);
    /* A range past the end fails the TRIM. */
    e = (DISK_SECTORS - 4) | (uint64_t)8 << 48;
    memcpy(gp(rl.gpa), &e, 8);
    build(5, 0x06, true, 0, 1, &rl, 1, 0, 5);
    issue_expect(5, false);
    /* SET FEATURES (transfer mode UDMA 2) is accepted. */
    build(6, 0xef, false, 0, 0x42, NULL, 0, 0, 5);
    gp(G_CT(6))[3] = 0x03;
    issue_expect(6, true);
    close_dev();
}

static void test_hostile_commands(void)
{
    open_dev(SX_BIO_SYNC);
    bring_up();
    const struct sx_ahci_stats *st = sx_ahci_stats(ahci);
    struct prd good = { G_DATA, 4096 };
    /* PRD address outside guest memory (and one straddling its end). */
    struct prd out = { 1ull << 40, 4096 };
    build(0, 0x25, false, 0, 8, &out, 1, 0, 5);
    issue_expect(0, false);
    CU_ASSERT(st->dma_errors >= 1);
    struct prd straddle = { mem_size - 512, 4096 };
    build(0, 0x25, false, 0, 8, &straddle, 1, 0, 5);
    issue_expect(0, false);
    /* PRDTL huge: 65535 entries. */
    build(1, 0x25, false, 0, 8, &good, 1, 65535, 5);
    issue_expect(1, false);
    CU_ASSERT(st->bad_prdt >= 1);
    /* PRDT shorter than the transfer. */
    struct prd shrt = { G_DATA, 1024 };
    build(1, 0x25, false, 0, 8, &shrt, 1, 0, 5);
    issue_expect(1, false);
    /* CFL bogus: 0, 1 and 17+ dwords are not an H2D FIS. */
    build(2, 0x25, false, 0, 8, &good, 1, 0, 0);
    issue_expect(2, false);
    build(2, 0x25, false, 0, 8, &good, 1, 0, 1);
    issue_expect(2, false);
    CU_ASSERT(st->bad_header >= 2);
    /* Not an H2D FIS type. */
    build(2, 0x25, false, 0, 8, &good, 1, 0, 5);
    gp(G_CT(2))[0] = 0x34;
    issue_expect(2, false);
    /* LBA past the end; count running over the end; huge LBA48 value. */
    build(3, 0x25, false, DISK_SECTORS, 1, &good, 1, 0, 5);
    issue_expect(3, false);
    CU_ASSERT(rd(PTFD) >> 8 & 0x10);                      /* IDNF */
    build(3, 0x35, true, DISK_SECTORS - 4, 8, &good, 1, 0, 5);
    issue_expect(3, false);
    build(3, 0x25, false, 0xffffffffffffull, 8, &good, 1, 0, 5);
    issue_expect(3, false);
    CU_ASSERT(st->out_of_range >= 3);
    /* An unknown command. */
    build(4, 0x99, false, 0, 0, NULL, 0, 0, 5);
    issue_expect(4, false);
    /* A queued command whose tag is not set in PxSACT, and one whose tag is not its slot. */
    build(5, 0x60, false, 0, 8, &good, 1, 0, 5);
    issue_expect(5, false);
    build(6, 0x60, false, 0, 8, &good, 1, 0, 5);
    gp(G_CT(6))[12] = 7 << 3;
    wr(PSACT, 1u << 6);
    issue_expect(6, false);
    CU_ASSERT_EQUAL(rd(PSACT), 0);
    CU_ASSERT(st->bad_fis >= 2);
    /* A command table not 128-byte aligned. */
    build(7, 0x25, false, 0, 8, &good, 1, 0, 5);
    p32(G_CLB + 7 * 32 + 8, (uint32_t)G_CT(7) + 0x40);
    issue_expect(7, false);
    /* O_DIRECT: a command too large for a bounce buffer with unaligned PRDs is refused. */
    if (sx_ahci_direct(ahci)) {
        struct prd un[2] = { { 0x400008, 4u << 20 }, { 0x800008, 1u << 20 } };
        build(7, 0x25, false, 0, 10240, un, 2, 0, 5);
        issue_expect(7, false);
    }
    /* Every failure above left the port working. */
    memset(gp(G_DATA), 0x33, 4096);
    build(8, 0x35, true, 8, 8, &good, 1, 0, 5);
    issue_expect(8, true);
    CU_ASSERT_EQUAL(prdbc(8), 4096);
    uint64_t failed = st->failed;
    CU_ASSERT(failed >= 13);
    /* PxCI written with the port stopped: nothing runs. */
    wr(PCMD, rd(PCMD) & ~1u);
    build(9, 0x25, false, 0, 8, &good, 1, 0, 5);
    wr(PCI, 1u << 9);
    CU_ASSERT_EQUAL(rd(PCI), 0);
    CU_ASSERT_EQUAL(prdbc(9), 0xdeadbeef);
    /* Command list outside memory: the header cannot be read, the command fails. */
    wr(PCLB, 0xfff00000);
    wr(PCLBU, 0x10);
    wr(PCMD, rd(PCMD) | 1);
    wr(PIS, UINT32_MAX);
    wr(PCI, 1);
    CU_ASSERT_EQUAL(rd(PCI), 0);
    CU_ASSERT(rd(PIS) & (1u << 30));
    CU_ASSERT_EQUAL(st->failed, failed + 1);
    /* Bus mastering off: DMA is refused, the command fails. */
    wr(PCMD, rd(PCMD) & ~1u);
    wr(PCLB, (uint32_t)G_CLB);
    wr(PCLBU, 0);
    wr(PCMD, rd(PCMD) | 1);
    cfg_write(0x04, 0x2, 2);
    wr(PCI, 1u << 8);
    CU_ASSERT_EQUAL(rd(PCI), 0);
    CU_ASSERT_EQUAL(st->failed, failed + 2);
    cfg_write(0x04, 0x6, 2);
    issue_expect(8, true);
    close_dev();
}

/* A queued command fails: its tag shows up in the NCQ command error log (page 10h) that
 * Linux's EH reads, with a valid checksum; reading it clears it. */
static void test_ncq_error_log(void)
{
    open_dev(SX_BIO_SYNC);
    bring_up();
    struct prd p = { G_DATA, 4096 };
    build(5, 0x60, false, DISK_SECTORS - 2, 8, &p, 1, 0, 5);
    wr(PIS, UINT32_MAX);
    wr(PSACT, 1u << 5);
    wr(PCI, 1u << 5);
    CU_ASSERT_EQUAL(rd(PSACT), 0);
    CU_ASSERT(rd(PIS) & (1u << 30));
    CU_ASSERT_EQUAL(prdbc(5), 0);
    struct prd lp = { G_DATA + 0x2000, 512 };
    for (int pass = 0; pass < 2; pass++) {
        memset(gp(lp.gpa), 0xff, 512);
        build(0, 0x2f, false, 0x10, 1, &lp, 1, 0, 5);
        issue_expect(0, true);
        const uint8_t *b = gp(lp.gpa);
        uint8_t sum = 0;
        for (unsigned i = 0; i < 512; i++)
            sum = (uint8_t)(sum + b[i]);
        CU_ASSERT_EQUAL(sum, 0);
        if (pass == 0) {
            CU_ASSERT_EQUAL(b[0], 5);                     /* the failed tag, NQ clear */
            CU_ASSERT_EQUAL(b[2] & 0x01, 0x01);           /* ERR */
            CU_ASSERT_EQUAL(b[4] | b[5] << 8, DISK_SECTORS - 2);
        } else {
            CU_ASSERT_EQUAL(b[0], 0x80);                  /* nothing pending any more */
        }
    }
    /* Other log pages are not there. */
    build(0, 0x2f, false, 0x03, 1, &lp, 1, 0, 5);
    issue_expect(0, false);
    close_dev();
}

static void test_stop_with_io_in_flight(void)
{
    open_dev(SX_BIO_AUTO);
    bring_up();
    struct prd p = { G_DATA, 65536 };
    for (unsigned t = 0; t < 4; t++)
        build(t, 0x60, false, t * 128, 128, &p, 1, 0, 5);
    wr(PSACT, 0xf);
    wr(PCI, 0xf);
    /* Stop at once: PxCI/PxSACT clear; CR stays while the engine holds buffers. */
    wr(PCMD, rd(PCMD) & ~1u);
    CU_ASSERT_EQUAL(rd(PSACT), 0);
    for (int i = 0; i < 200 && (rd(PCMD) & (1u << 15)); i++)
        sx_ahci_poll(ahci, 10);
    CU_ASSERT_FALSE(rd(PCMD) & (1u << 15));
    CU_ASSERT_EQUAL(sx_ahci_inflight(ahci), 0);
    /* Restart: the same slots work again. */
    wr(PCMD, rd(PCMD) | 1);
    build(0, 0x25, false, 0, 8, &p, 1, 0, 5);
    issue_expect(0, true);
    close_dev();
}

/* The platform device's unplug (disks): the controller quiesces with I/O in flight and goes
 * away; its ABAR and config space no longer answer, the NIC class bit leaves it alone. */
static void test_unplug(void)
{
    open_dev(SX_BIO_AUTO);
    bring_up();
    CU_ASSERT_EQUAL(sx_dm_unplug(dm, SX_DM_UNPLUG_NICS), 0);
    CU_ASSERT_EQUAL(cfg_read(0, 4), 0x29228086);
    struct prd p = { G_DATA, 65536 };
    for (unsigned t = 0; t < 4; t++)
        build(t, 0x60, false, t * 128, 128, &p, 1, 0, 5);
    wr(PSACT, 0xf);
    wr(PCI, 0xf);
    CU_ASSERT_EQUAL(sx_dm_unplug(dm, SX_DM_UNPLUG_DISKS), 1);
    CU_ASSERT_EQUAL(cfg_read(0, 4), 0xffffffff);
    CU_ASSERT_EQUAL(rd(0x00), 0xffffffff);
    CU_ASSERT_PTR_NULL(sx_dm_dev_find(dm, "ahci"));
    close_dev();
}

/* Regression (issue 14): teardown gave up draining after 10 s and then freed the controller
 * (the iovec arrays in its slots) and its bounce buffers, which the kernel may still complete
 * reads into. With an engine whose reads never complete, the controller now survives its
 * removal (counted), and the late completion writes into memory that is still allocated: under
 * ASan the old code fails here with a heap-use-after-free. */
static void test_teardown_never_frees_what_a_hung_engine_may_write(void)
{
    fake_next = true;
    open_dev(SX_BIO_URING);
    bring_up();
    /* One read off the DMA alignment (bounced with O_DIRECT), one straight into guest memory. */
    struct prd odd = { G_DATA + 0x202, 4096 }, even = { G_DATA + 0x4000, 4096 };
    build(0, 0x25, false, 0, 8, &odd, 1, 0, 5);
    build(1, 0x25, false, 8, 8, &even, 1, 0, 5);
    wr(PCI, 0x3);
    CU_ASSERT_EQUAL(fk_n, 2);
    CU_ASSERT_EQUAL(sx_ahci_inflight(ahci), 2);
    if (sx_ahci_direct(ahci))
        CU_ASSERT_EQUAL(sx_ahci_stats(ahci)->bounced, 1);
    uint64_t abandoned = sx_bio_abandoned();
    unsigned held = sx_ahci_held();
    /* The controller goes away while both reads hang. */
    sx_ioreq_dma_unmap(srv, g, G_LEN);
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    CU_ASSERT_EQUAL(fk_cancels, 1);
    CU_ASSERT_EQUAL(sx_bio_abandoned(), abandoned + 2);
    CU_ASSERT_EQUAL(sx_ahci_held(), held + 1);
    /* The device answers after all: the reads land (guest memory is still mapped here). */
    fake_complete(0x5a);
    sx_ioreq_close(srv);
    dm = NULL;
    srv = NULL;
    ahci = NULL;
}

static int suite_init(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    plat0 = simenv_plat(&env, 0);
    if (!plat0)
        return 1;
    int d = sxc_domain_create(plat0->conn, "hvm-ahci", SXD_TYPE_HVM, 16, 1, false);
    if (d <= 0)
        return 1;
    hvm = (domid_t)d;
    mem_size = 16ull << 20;
    snprintf(img, sizeof(img), "/var/tmp/sx-ahci-test.%d.XXXXXX", (int)getpid());
    int fd = mkstemp(img);
    if (fd < 0) {
        snprintf(img, sizeof(img), "/tmp/sx-ahci-test.%d.XXXXXX", (int)getpid());
        fd = mkstemp(img);
    }
    if (fd < 0 || ftruncate(fd, (off_t)DISK_SECTORS * 512) < 0)
        return 1;
    close(fd);
    return 0;
}

static int suite_clean(void)
{
    unlink(img);
    sx_plat_close(plat0);
    simenv_stop(&env);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_identity_and_abar_sizing),
    SX_TEST(test_hba_reset),
    SX_TEST(test_port_start_stop),
    SX_TEST(test_identify_and_interrupt),
    SX_TEST(test_dma_ext_round_trip),
    SX_TEST(test_ncq_several_tags),
    SX_TEST(test_flush_and_trim),
    SX_TEST(test_hostile_commands),
    SX_TEST(test_ncq_error_log),
    SX_TEST(test_stop_with_io_in_flight),
    SX_TEST(test_unplug),
    SX_TEST(test_teardown_never_frees_what_a_hung_engine_may_write),
};

SX_TEST_MAIN("ahci", cases, suite_init, suite_clean)

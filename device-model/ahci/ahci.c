/*
 * AHCI controller (ich9-ahci identity), one port, one ATA disk on a blkio engine.
 * See ahci.h for what is implemented. Register and FIS layouts follow the AHCI 1.3 and
 * ATA8-ACS / SATA 2.6 specifications (QEMU's hw/ide/ahci.c is the behavioural reference).
 */
#define SX_LOG_MODULE "ahci"
#include "device-model/ahci/ahci.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "log.h"

/* ---- registers ---- */
#define HBA_CAP      0x00
#define HBA_GHC      0x04
#define HBA_IS       0x08
#define HBA_PI       0x0c
#define HBA_VS       0x10
#define HBA_CAP2     0x24
#define ABAR_SIZE    0x1000
#define PORT0        0x100
#define PORT_SIZE    0x80

#define P_CLB   0x00
#define P_CLBU  0x04
#define P_FB    0x08
#define P_FBU   0x0c
#define P_IS    0x10
#define P_IE    0x14
#define P_CMD   0x18
#define P_TFD   0x20
#define P_SIG   0x24
#define P_SSTS  0x28
#define P_SCTL  0x2c
#define P_SERR  0x30
#define P_SACT  0x34
#define P_CI    0x38
#define P_SNTF  0x3c

#define CAP_S64A   (1u << 31)
#define CAP_SNCQ   (1u << 30)
#define CAP_SAM    (1u << 18)
#define CAP_ISS_G2 (2u << 20)
#define CAP_NCS(n) (((n) - 1u) << 8)

#define GHC_HR (1u << 0)
#define GHC_IE (1u << 1)
#define GHC_AE (1u << 31)

#define PIS_DHRS (1u << 0)
#define PIS_PSS  (1u << 1)
#define PIS_SDBS (1u << 3)
#define PIS_TFES (1u << 30)
#define PIS_MASK 0xfdc000ffu   /* implemented interrupt status bits */

#define PCMD_ST  (1u << 0)
#define PCMD_SUD (1u << 1)
#define PCMD_POD (1u << 2)
#define PCMD_CLO (1u << 3)
#define PCMD_FRE (1u << 4)
#define PCMD_FR  (1u << 14)
#define PCMD_CR  (1u << 15)
#define PCMD_WMASK (PCMD_ST | PCMD_SUD | PCMD_POD | PCMD_FRE)   /* ICC: done at once, reads 0 */

#define ATA_DRDY 0x40
#define ATA_DSC  0x10
#define ATA_ERR  0x01
#define ATA_BSY  0x80
#define ATA_DRQ  0x08
#define ATA_ABRT 0x04
#define ATA_IDNF 0x10

/* Received FIS area offsets. */
#define RFIS_PIO 0x20
#define RFIS_D2H 0x40
#define RFIS_SDB 0x58

#define NSLOTS 32u
#define MAX_PRD 1024u            /* PRDT entries per command we accept (SX_BIO_MAX_IOVCNT) */
#define MAX_TRIM_BLOCKS 1u       /* IDENTIFY word 105 */
#define SECTOR 512u
#define ENGINE_DEPTH 128u
/* Largest command that may go through a bounce buffer (O_DIRECT with buffers off the DMA
 * alignment): bounds what a guest can make the device model allocate to 32 x 4 MiB. */
#define BOUNCE_MAX (4u << 20)

enum slot_kind { K_NONE, K_RW, K_FLUSH, K_TRIM };

struct slot {
    bool busy;                   /* accepted, not completed yet */
    bool ncq, write, failed, abandoned, bounced;
    enum slot_kind kind;
    uint8_t cmd;
    uint32_t gen;
    unsigned inflight;           /* engine operations outstanding */
    uint64_t hdr_gpa;
    uint32_t bytes;
    uint64_t lba;
    uint8_t err;                 /* ATA error register on failure */
    int niov;
    struct iovec iov[MAX_PRD];   /* guest memory, mapped (unmapped at completion) */
    uint32_t prd[MAX_PRD * 4];   /* the PRDT copy */
    void *bounce;
    size_t bounce_cap;
    struct iovec biov;
};

struct sx_ahci {
    struct sx_dm *dm;
    struct sx_dm_dev *dev;
    struct sx_pci *pci;
    int fd;
    bool read_only, direct, irq_level;
    size_t dio_align;
    uint64_t sectors;
    struct sx_bio *bio;
    struct sx_bio_target *target;   /* a network disk (then fd is -1) */
    enum sx_bio_kind kind;
    bool watching;
    char serial[21], model[41];
    uint8_t udma_mode;
    /* generic host control */
    uint32_t ghc;
    /* port 0 */
    uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
    bool init_d2h_sent;
    unsigned inflight;           /* engine ops over all slots */
    bool hold;                   /* the engine left commands running: never free their memory */
    struct sx_ahci *held_next;   /* on the held list (see quiesce) */
    /* The last failed queued command, for the NCQ command error log (log page 10h). */
    bool ncq_err;
    uint8_t ncq_err_tag, ncq_err_status, ncq_err_error;
    uint64_t ncq_err_lba;
    struct slot slots[NSLOTS];
    struct sx_bio_cpl cpl[64];
    struct sx_ahci_stats st;
};

static void process_ci(struct sx_ahci *a);

/* ---------------------------------------------------------------- interrupts, FISes */

static void update_irq(struct sx_ahci *a)
{
    bool level = (a->ghc & GHC_IE) && (a->is & a->ie);
    if (level != a->irq_level) {
        a->irq_level = level;
        if (level)
            a->st.irqs++;
        sx_pci_set_irq(a->pci, level);
    }
}

static void fis_write(struct sx_ahci *a, unsigned off, const void *fis, size_t len)
{
    if (!(a->cmd & PCMD_FRE))
        return;
    uint64_t fb = ((uint64_t)a->fbu << 32) | a->fb;
    if (sx_pci_dma_write(a->pci, fb + off, fis, len) < 0)
        a->st.dma_errors++;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A D2H register FIS with status/error (and the disk signature in LBA/count after a reset). */
static void send_d2h(struct sx_ahci *a, uint8_t status, uint8_t error, bool signature)
{
    uint8_t f[20] = { 0x34, 0x40, status, error };
    if (signature) {
        f[4] = 1;           /* LBA low */
        f[12] = 1;          /* sector count */
    }
    fis_write(a, RFIS_D2H, f, sizeof(f));
    a->tfd = (uint32_t)error << 8 | status;
    a->is |= PIS_DHRS;
}

static void port_reset(struct sx_ahci *a)
{
    /* Abandon whatever is running: engine completions still owed are dropped on arrival. */
    for (unsigned i = 0; i < NSLOTS; i++)
        if (a->slots[i].busy) {
            a->slots[i].abandoned = true;
            a->slots[i].busy = false;
        }
    a->ci = a->sact = 0;
    a->serr = 0;
    a->ssts = 0x123;               /* DET 3 (present, phy up), SPD Gen2, IPM active */
    a->sig = 0x00000101;           /* ATA disk */
    a->tfd = 0x0150;               /* DRDY | DSC, error 1 (diagnostics passed) */
    a->init_d2h_sent = false;
}

static void hba_reset(struct sx_ahci *a)
{
    a->st.resets++;
    a->ghc = 0;
    a->is = a->ie = 0;
    a->sctl = 0;
    a->cmd = PCMD_SUD | PCMD_POD;
    port_reset(a);
    update_irq(a);
}

/* ---------------------------------------------------------------- command completion */

static void unmap_slot(struct sx_ahci *a, struct slot *s)
{
    struct sx_ioreq *r = sx_dm_ioreq(a->dm);
    for (int i = 0; i < s->niov; i++)
        if (r)
            sx_ioreq_dma_unmap(r, s->iov[i].iov_base, s->iov[i].iov_len);
    s->niov = 0;
}

static void copy_to_sg(struct slot *s, const void *src, size_t len)
{
    const uint8_t *p = src;
    for (int i = 0; i < s->niov && len; i++) {
        size_t n = s->iov[i].iov_len < len ? s->iov[i].iov_len : len;
        memcpy(s->iov[i].iov_base, p, n);
        p += n;
        len -= n;
    }
}

static void copy_from_sg(struct slot *s, void *dst, size_t len)
{
    uint8_t *p = dst;
    for (int i = 0; i < s->niov && len; i++) {
        size_t n = s->iov[i].iov_len < len ? s->iov[i].iov_len : len;
        memcpy(p, s->iov[i].iov_base, n);
        p += n;
        len -= n;
    }
}

/* Complete slot n: PRDBC, PxCI / PxSACT, the FIS, PxTFD, PxIS, the interrupt. */
static void finish(struct sx_ahci *a, unsigned n, bool ok, bool pio)
{
    struct slot *s = &a->slots[n];
    unmap_slot(a, s);
    if (s->abandoned) {
        s->abandoned = false;
        s->busy = false;
        return;
    }
    s->busy = false;
    uint32_t bit = 1u << n;
    if (s->hdr_gpa != UINT64_MAX) {
        uint8_t prdbc[4];
        put_le32(prdbc, ok ? s->bytes : 0);
        if (sx_pci_dma_write(a->pci, s->hdr_gpa + 4, prdbc, 4) < 0)
            a->st.dma_errors++;
    }
    uint8_t status = ok ? ATA_DRDY | ATA_DSC : ATA_DRDY | ATA_ERR;
    uint8_t error = ok ? 0 : (s->err ? s->err : ATA_ABRT);
    if (!ok) {
        a->st.failed++;
        a->is |= PIS_TFES;
        if (s->ncq) {
            a->ncq_err = true;
            a->ncq_err_tag = (uint8_t)n;
            a->ncq_err_status = status;
            a->ncq_err_error = error;
            a->ncq_err_lba = s->lba;
        }
    }
    if (s->ncq && ok) {
        a->sact &= ~bit;
        a->ci &= ~bit;
        uint8_t f[8] = { 0xa1, 0x40, status & 0x77, error };
        put_le32(f + 4, bit);
        fis_write(a, RFIS_SDB, f, sizeof(f));
        a->tfd = (uint32_t)error << 8 | status;
        a->is |= PIS_SDBS;
    } else if (pio && ok) {
        a->ci &= ~bit;
        uint8_t f[20] = { 0x5f, 0x60, status, error };
        f[15] = status;                          /* E_Status */
        f[16] = (uint8_t)s->bytes;
        f[17] = (uint8_t)(s->bytes >> 8);
        fis_write(a, RFIS_PIO, f, sizeof(f));
        a->tfd = (uint32_t)error << 8 | status;
        a->is |= PIS_PSS;
    } else {
        a->ci &= ~bit;
        a->sact &= ~bit;
        send_d2h(a, status, error, false);
        if (s->ncq) {   /* the failed tag in a set device bits FIS as well */
            uint8_t f[8] = { 0xa1, 0x40, status & 0x77, error };
            put_le32(f + 4, bit);
            fis_write(a, RFIS_SDB, f, sizeof(f));
            a->is |= PIS_SDBS;
        }
    }
    update_irq(a);
}

static void fail(struct sx_ahci *a, unsigned n, uint64_t *ctr, uint8_t err)
{
    if (ctr)
        (*ctr)++;
    a->slots[n].err = err;
    sx_log_ratelimited(SX_LOG_WARN, "dom%u: slot %u command %#x failed", sx_dm_domid(a->dm), n,
                       a->slots[n].cmd);
    finish(a, n, false, false);
}

static void engine_done(struct sx_ahci *a, struct slot *s, unsigned n)
{
    if (s->inflight || !s->busy)
        return;
    if (s->bounced && !s->write && !s->failed && !s->abandoned)
        copy_to_sg(s, s->bounce, s->bytes);
    if (!s->failed && !s->abandoned && s->kind == K_RW) {
        if (s->write)
            a->st.bytes_written += s->bytes;
        else
            a->st.bytes_read += s->bytes;
    }
    if (s->failed && !s->abandoned) {
        a->st.io_errors++;
        s->err = ATA_ABRT;
    }
    finish(a, n, !s->failed, false);
}

static void reap(struct sx_ahci *a)
{
    int got;
    while ((got = sx_bio_reap(a->bio, a->cpl, 64)) > 0) {
        for (int i = 0; i < got; i++) {
            unsigned n = (unsigned)(a->cpl[i].cookie & 0xff);
            uint32_t gen = (uint32_t)(a->cpl[i].cookie >> 8);
            struct slot *s = &a->slots[n % NSLOTS];
            if (n >= NSLOTS || s->gen != gen || !s->inflight) {
                a->st.stale_completions++;
                continue;
            }
            s->inflight--;
            a->inflight--;
            int32_t res = a->cpl[i].res;
            if (res < 0 || (s->kind == K_RW && (uint32_t)res != s->bytes))
                s->failed = true;
            if (!s->busy && !s->inflight) {   /* abandoned by a stop or reset */
                unmap_slot(a, s);
                s->abandoned = false;
                continue;
            }
            engine_done(a, s, n);
        }
    }
    if (!(a->cmd & PCMD_ST) && !a->inflight)
        a->cmd &= ~PCMD_CR;
    process_ci(a);      /* commands waiting for a slot still owned by an abandoned op */
}

static void on_engine_event(void *opaque, uint32_t events)
{
    struct sx_ahci *a = opaque;
    sx_bio_event_ack(a->bio);
    sx_bio_submit(a->bio);      /* anything an earlier submit left queued (-EAGAIN) */
    reap(a);
}

static void submit(struct sx_ahci *a)
{
    int rc = sx_bio_submit(a->bio);
    if (rc < 0 && rc != -EAGAIN)
        sx_log_ratelimited(SX_LOG_WARN, "submit: %s", strerror(-rc));
    reap(a);            /* the synchronous engine has completed them already */
}

/* ---------------------------------------------------------------- IDENTIFY */

static void ata_string(uint16_t *w, const char *s, unsigned words)
{
    size_t len = strlen(s);
    for (unsigned i = 0; i < words; i++) {
        uint8_t hi = 2 * i < len ? (uint8_t)s[2 * i] : ' ';
        uint8_t lo = 2 * i + 1 < len ? (uint8_t)s[2 * i + 1] : ' ';
        w[i] = (uint16_t)(hi << 8 | lo);
    }
}

static void identify(const struct sx_ahci *a, uint16_t w[256])
{
    memset(w, 0, 512);
    uint64_t n = a->sectors;
    uint64_t chs = n / (16 * 63);
    w[0] = 0x0040;                              /* fixed ATA device */
    w[1] = chs > 16383 ? 16383 : (uint16_t)chs;
    w[3] = 16;
    w[6] = 63;
    ata_string(&w[10], a->serial, 10);
    ata_string(&w[23], "1.0", 4);
    ata_string(&w[27], a->model, 20);
    w[47] = 0x8000 | 16;
    w[49] = (1 << 11) | (1 << 9) | (1 << 8);    /* IORDY, LBA, DMA */
    w[50] = 0x4000;
    w[53] = 0x0006;                             /* words 64-70 and 88 valid */
    uint32_t lba28 = n > 0x0fffffff ? 0x0fffffff : (uint32_t)n;
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    w[63] = 0x0007;                             /* multiword DMA 0-2 supported */
    w[64] = 0x0003;                             /* PIO 3, 4 */
    w[65] = w[66] = w[67] = w[68] = 120;
    w[69] = (1 << 14);                          /* deterministic read after TRIM */
    w[75] = NSLOTS - 1;                         /* queue depth 32 */
    w[76] = (1 << 8) | (1 << 2) | (1 << 1);     /* NCQ, SATA Gen2, Gen1 */
    w[80] = 0x01f0;                             /* ATA/ATAPI-4 .. ACS-2 */
    w[82] = (1 << 14) | (1 << 5);               /* NOP, write cache */
    w[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10);  /* FLUSH EXT, FLUSH, LBA48 */
    w[84] = (1 << 14);
    w[85] = (1 << 14) | (1 << 5);
    w[86] = (1 << 13) | (1 << 12) | (1 << 10);
    w[87] = (1 << 14);
    w[88] = 0x003f | (uint16_t)(1u << (8 + a->udma_mode));  /* UDMA 0-5, one selected */
    w[93] = 0;
    for (unsigned i = 0; i < 4; i++)
        w[100 + i] = (uint16_t)(n >> (16 * i));
    w[105] = MAX_TRIM_BLOCKS;
    w[106] = 0x4000;                            /* 512-byte logical = physical sectors */
    w[169] = 1;                                 /* DATA SET MANAGEMENT TRIM */
    w[217] = 1;                                 /* non-rotating */
}

/* NCQ command error log (ACS-2 log page 10h), what Linux's EH reads after a queued command
 * failed to learn its tag; reading it clears the condition. NQ (bit 7) when nothing failed. */
static void ncq_error_log(struct sx_ahci *a, struct slot *s)
{
    uint8_t b[512];
    memset(b, 0, sizeof(b));
    if (a->ncq_err) {
        b[0] = a->ncq_err_tag & 0x1f;
        b[2] = a->ncq_err_status;
        b[3] = a->ncq_err_error;
        for (unsigned i = 0; i < 3; i++) {
            b[4 + i] = (uint8_t)(a->ncq_err_lba >> (8 * i));
            b[8 + i] = (uint8_t)(a->ncq_err_lba >> (24 + 8 * i));
        }
        a->ncq_err = false;
    } else {
        b[0] = 0x80;
    }
    uint8_t sum = 0;
    for (unsigned i = 0; i < 511; i++)
        sum = (uint8_t)(sum + b[i]);
    b[511] = (uint8_t)(0x100 - sum);
    copy_to_sg(s, b, sizeof(b));
}

/* ---------------------------------------------------------------- command issue */

/* Build the slot's scatter list from its PRDT copy: `need` bytes, mapped for the transfer
 * direction (to_guest: the device writes guest memory). */
static int build_sg(struct sx_ahci *a, struct slot *s, unsigned prdtl, uint64_t ctba,
                    uint64_t need, bool to_guest)
{
    if (!need)
        return 0;
    if (prdtl == 0 || prdtl > MAX_PRD) {
        a->st.bad_prdt++;
        return -EINVAL;
    }
    if (sx_pci_dma_read(a->pci, ctba + 0x80, s->prd, (size_t)prdtl * 16) < 0) {
        a->st.dma_errors++;
        return -EFAULT;
    }
    uint64_t got = 0;
    for (unsigned i = 0; i < prdtl && got < need; i++) {
        const uint8_t *e = (const uint8_t *)&s->prd[i * 4];
        uint64_t dba = get_le32(e) | (uint64_t)get_le32(e + 4) << 32;
        uint32_t dbc = (get_le32(e + 12) & 0x3fffff) + 1;
        if (dba & 1) {
            a->st.bad_prdt++;
            return -EINVAL;
        }
        uint64_t len = need - got < dbc ? need - got : dbc;
        void *p = sx_pci_dma_map(a->pci, dba, len, to_guest);
        if (!p) {
            a->st.dma_errors++;
            return -EFAULT;
        }
        s->iov[s->niov++] = (struct iovec){ p, len };
        got += len;
    }
    if (got < need) {
        a->st.bad_prdt++;
        return -EINVAL;
    }
    return 0;
}

static bool sg_aligned(const struct sx_ahci *a, const struct slot *s)
{
    if (!a->direct)
        return true;
    for (int i = 0; i < s->niov; i++)
        if (((uintptr_t)s->iov[i].iov_base | s->iov[i].iov_len) & (a->dio_align - 1))
            return false;
    return true;
}

static int start_rw(struct sx_ahci *a, unsigned n, uint64_t lba, uint32_t count, bool write,
                    unsigned prdtl, uint64_t ctba)
{
    struct slot *s = &a->slots[n];
    s->lba = lba;
    if (write && a->read_only) {
        a->st.unsupported++;
        return -EROFS;
    }
    if (lba > a->sectors || count > a->sectors - lba) {
        a->st.out_of_range++;
        s->err = ATA_IDNF | ATA_ABRT;
        return -ERANGE;
    }
    s->bytes = count * SECTOR;
    s->write = write;
    s->kind = K_RW;
    int rc = build_sg(a, s, prdtl, ctba, s->bytes, !write);
    if (rc < 0)
        return rc;
    const struct iovec *iov = s->iov;
    int niov = s->niov;
    s->bounced = !sg_aligned(a, s);
    if (s->bounced) {
        if (s->bytes > BOUNCE_MAX) {
            a->st.bad_prdt++;
            sx_log_ratelimited(SX_LOG_WARN, "dom%u: %u-byte command with unaligned buffers "
                               "refused (bounce limit %u)", sx_dm_domid(a->dm), s->bytes,
                               BOUNCE_MAX);
            return -EINVAL;
        }
        if (s->bounce_cap < s->bytes) {
            free(s->bounce);
            s->bounce = NULL;
            s->bounce_cap = 0;
            if (posix_memalign(&s->bounce, 4096, s->bytes))
                return -ENOMEM;
            s->bounce_cap = s->bytes;
        }
        a->st.bounced++;
        if (write)
            copy_from_sg(s, s->bounce, s->bytes);
        s->biov = (struct iovec){ s->bounce, s->bytes };
        iov = &s->biov;
        niov = 1;
    }
    rc = sx_bio_rw(a->bio, write, iov, niov, lba * SECTOR, (uint64_t)s->gen << 8 | n);
    if (rc < 0)
        return rc;
    s->inflight++;
    a->inflight++;
    if (write)
        a->st.writes++;
    else
        a->st.reads++;
    return 0;
}

static int start_trim(struct sx_ahci *a, unsigned n, uint32_t blocks, unsigned prdtl,
                      uint64_t ctba)
{
    struct slot *s = &a->slots[n];
    if (a->read_only) {
        a->st.unsupported++;
        return -EROFS;
    }
    if (blocks == 0 || blocks > MAX_TRIM_BLOCKS) {
        a->st.bad_fis++;
        return -EINVAL;
    }
    s->bytes = blocks * SECTOR;
    s->kind = K_TRIM;
    int rc = build_sg(a, s, prdtl, ctba, s->bytes, false);
    if (rc < 0)
        return rc;
    uint8_t ranges[MAX_TRIM_BLOCKS * SECTOR];
    copy_from_sg(s, ranges, s->bytes);          /* one copy, validated below */
    a->st.trims++;
    for (unsigned i = 0; i < s->bytes / 8; i++) {
        const uint8_t *e = ranges + 8 * i;
        uint64_t lba = get_le32(e) | (uint64_t)(e[4] | e[5] << 8) << 32;
        uint32_t cnt = e[6] | e[7] << 8;
        if (!cnt)
            continue;
        if (lba > a->sectors || cnt > a->sectors - lba) {
            a->st.out_of_range++;
            s->failed = true;
            break;
        }
        rc = sx_bio_discard(a->bio, lba * SECTOR, (uint64_t)cnt * SECTOR,
                            (uint64_t)s->gen << 8 | n);
        if (rc < 0) {
            s->failed = true;
            break;
        }
        s->inflight++;
        a->inflight++;
    }
    return 0;
}

static void start_cmd(struct sx_ahci *a, unsigned n)
{
    struct slot *s = &a->slots[n];
    s->gen++;
    s->busy = true;
    s->ncq = s->write = s->failed = s->abandoned = s->bounced = false;
    s->kind = K_NONE;
    s->cmd = 0;
    s->err = 0;
    s->bytes = 0;
    s->niov = 0;
    a->st.cmds++;

    uint64_t clb = ((uint64_t)a->clbu << 32) | a->clb;
    s->hdr_gpa = clb + (uint64_t)n * 32;
    uint8_t hdr[16];
    if (sx_pci_dma_read(a->pci, s->hdr_gpa, hdr, sizeof(hdr)) < 0) {
        s->hdr_gpa = UINT64_MAX;
        a->st.dma_errors++;
        fail(a, n, &a->st.bad_header, ATA_ABRT);
        return;
    }
    uint32_t dw0 = get_le32(hdr);
    unsigned cfl = dw0 & 0x1f, prdtl = dw0 >> 16;
    uint64_t ctba = get_le32(hdr + 8) | (uint64_t)get_le32(hdr + 12) << 32;
    if (cfl < 5 || cfl > 16 || (dw0 & (1u << 5)) || (ctba & 0x7f)) {
        fail(a, n, &a->st.bad_header, ATA_ABRT);    /* short FIS, ATAPI, misaligned table */
        return;
    }
    uint8_t fis[20];
    if (sx_pci_dma_read(a->pci, ctba, fis, sizeof(fis)) < 0) {
        a->st.dma_errors++;
        fail(a, n, &a->st.bad_fis, ATA_ABRT);
        return;
    }
    if (fis[0] != 0x27) {
        fail(a, n, &a->st.bad_fis, ATA_ABRT);
        return;
    }
    if (!(fis[1] & 0x80)) {
        /* A control register update (Linux's soft reset: SRST set, then cleared). */
        a->st.other_ok++;
        bool srst_clear = !(fis[15] & 0x04);
        finish(a, n, true, false);
        if (srst_clear)
            send_d2h(a, ATA_DRDY | ATA_DSC, 1, true);
        update_irq(a);
        return;
    }
    s->cmd = fis[2];
    uint64_t lba48 = fis[4] | (uint64_t)fis[5] << 8 | (uint64_t)fis[6] << 16 |
                     (uint64_t)fis[8] << 24 | (uint64_t)fis[9] << 32 | (uint64_t)fis[10] << 40;
    uint64_t lba28 = fis[4] | (uint64_t)fis[5] << 8 | (uint64_t)fis[6] << 16 |
                     (uint64_t)(fis[7] & 0x0f) << 24;
    uint32_t cnt16 = fis[12] | (uint32_t)fis[13] << 8;
    int rc = 0;
    switch (s->cmd) {
    case 0xec: {                                   /* IDENTIFY DEVICE */
        uint16_t w[256];
        identify(a, w);
        uint8_t buf[512];
        for (unsigned i = 0; i < 256; i++) {
            buf[2 * i] = (uint8_t)w[i];
            buf[2 * i + 1] = (uint8_t)(w[i] >> 8);
        }
        s->bytes = 512;
        rc = build_sg(a, s, prdtl, ctba, 512, true);
        if (rc < 0)
            break;
        copy_to_sg(s, buf, 512);
        a->st.identifies++;
        finish(a, n, true, true);
        return;
    }
    case 0x25: case 0x35:                          /* READ / WRITE DMA EXT */
        rc = start_rw(a, n, lba48, cnt16 ? cnt16 : 65536, s->cmd == 0x35, prdtl, ctba);
        break;
    case 0xc8: case 0xca:                          /* READ / WRITE DMA (LBA28) */
        rc = start_rw(a, n, lba28, fis[12] ? fis[12] : 256, s->cmd == 0xca, prdtl, ctba);
        break;
    case 0x60: case 0x61: {                        /* READ / WRITE FPDMA QUEUED */
        unsigned tag = fis[12] >> 3;
        uint32_t cnt = fis[3] | (uint32_t)fis[11] << 8;
        if (tag != n || !(a->sact & (1u << n))) {
            fail(a, n, &a->st.bad_fis, ATA_ABRT);  /* tag not the slot or not allocated */
            return;
        }
        s->ncq = true;
        a->st.ncq++;
        rc = start_rw(a, n, lba48, cnt ? cnt : 65536, s->cmd == 0x61, prdtl, ctba);
        if (rc == 0)
            a->ci &= ~(1u << n);                   /* accepted: the device owns the tag */
        break;
    }
    case 0xe7: case 0xea:                          /* FLUSH CACHE (EXT) */
        s->kind = K_FLUSH;
        rc = sx_bio_flush(a->bio, (uint64_t)s->gen << 8 | n);
        if (rc == 0) {
            s->inflight++;
            a->inflight++;
            a->st.flushes++;
        }
        break;
    case 0x06:                                     /* DATA SET MANAGEMENT */
        if (!(fis[3] & 1)) {
            a->st.unsupported++;
            rc = -EOPNOTSUPP;
            break;
        }
        rc = start_trim(a, n, cnt16, prdtl, ctba);
        break;
    case 0x2f:                                     /* READ LOG EXT */
        if (fis[4] != 0x10 || cnt16 != 1) {
            a->st.unsupported++;
            rc = -EOPNOTSUPP;
            break;
        }
        s->bytes = 512;
        rc = build_sg(a, s, prdtl, ctba, 512, true);
        if (rc < 0)
            break;
        ncq_error_log(a, s);
        a->st.other_ok++;
        finish(a, n, true, true);
        return;
    case 0x40: case 0x42:                          /* READ VERIFY SECTOR(S) (EXT) */
        if ((s->cmd == 0x42 ? lba48 : lba28) + (cnt16 ? cnt16 : 65536) > a->sectors) {
            a->st.out_of_range++;
            s->err = ATA_IDNF | ATA_ABRT;
            rc = -ERANGE;
            break;
        }
        /* fall through */
    case 0xc6:                                     /* SET MULTIPLE MODE */
    case 0x91:                                     /* INITIALIZE DEVICE PARAMETERS */
        a->st.other_ok++;
        finish(a, n, true, false);
        return;
    case 0xef:                                     /* SET FEATURES */
        if (fis[3] == 0x03 && (fis[12] & 0xf8) == 0x40 && (fis[12] & 7) <= 5)
            a->udma_mode = fis[12] & 7;
        a->st.other_ok++;
        finish(a, n, true, false);
        return;
    case 0xe5:                                     /* CHECK POWER MODE: active */
    case 0xe0: case 0xe1: case 0xe2: case 0xe3:    /* standby / idle: nothing to do */
        a->st.other_ok++;
        finish(a, n, true, false);
        return;
    default:
        a->st.unsupported++;
        rc = -EOPNOTSUPP;
        break;
    }
    if (rc < 0) {
        fail(a, n, NULL, s->err ? s->err : ATA_ABRT);
        return;
    }
    if (!s->inflight)        /* nothing reached the engine (a TRIM of empty ranges) */
        engine_done(a, s, n);
}

/* Start every issued command whose slot is free. */
static void process_ci(struct sx_ahci *a)
{
    if (!(a->cmd & PCMD_ST))
        return;
    uint32_t todo = a->ci;
    bool queued = false;
    while (todo) {
        unsigned n = (unsigned)__builtin_ctz(todo);
        todo &= todo - 1;
        struct slot *s = &a->slots[n];
        if (s->busy || s->inflight || !(a->ci & (1u << n)) || !(a->cmd & PCMD_ST))
            continue;
        start_cmd(a, n);
        queued = true;
    }
    if (queued)
        submit(a);
}

/* ---------------------------------------------------------------- registers */

static uint32_t port_read(struct sx_ahci *a, unsigned off)
{
    switch (off) {
    case P_CLB: return a->clb;
    case P_CLBU: return a->clbu;
    case P_FB: return a->fb;
    case P_FBU: return a->fbu;
    case P_IS: return a->is;
    case P_IE: return a->ie;
    case P_CMD: return a->cmd;
    case P_TFD: return a->tfd;
    case P_SIG: return a->sig;
    case P_SSTS: return a->ssts;
    case P_SCTL: return a->sctl;
    case P_SERR: return a->serr;
    case P_SACT: return a->sact;
    case P_CI: return a->ci;
    default: return 0;
    }
}

static void port_cmd_write(struct sx_ahci *a, uint32_t v)
{
    uint32_t old = a->cmd;
    a->cmd = (old & ~PCMD_WMASK) | (v & PCMD_WMASK);
    if (v & PCMD_CLO)
        a->tfd &= ~(uint32_t)(ATA_BSY | ATA_DRQ);
    if (a->cmd & PCMD_FRE) {
        a->cmd |= PCMD_FR;
        if (!a->init_d2h_sent) {
            a->init_d2h_sent = true;
            send_d2h(a, (uint8_t)a->tfd, (uint8_t)(a->tfd >> 8), true);
        }
    } else {
        a->cmd &= ~PCMD_FR;
    }
    if ((a->cmd & PCMD_ST) && !(old & PCMD_ST)) {
        a->cmd |= PCMD_CR;
        process_ci(a);
    } else if (!(a->cmd & PCMD_ST) && (old & PCMD_ST)) {
        /* Stop: PxCI and PxSACT clear; CR stays until the engine gave back every buffer. */
        for (unsigned i = 0; i < NSLOTS; i++)
            if (a->slots[i].busy) {
                a->slots[i].busy = false;
                a->slots[i].abandoned = a->slots[i].inflight > 0;
                if (!a->slots[i].inflight)
                    unmap_slot(a, &a->slots[i]);
            }
        a->ci = a->sact = 0;
        if (!a->inflight)
            a->cmd &= ~PCMD_CR;
    }
    update_irq(a);
}

static void port_write(struct sx_ahci *a, unsigned off, uint32_t v)
{
    bool running = a->cmd & (PCMD_ST | PCMD_CR);
    switch (off) {
    case P_CLB:
        if (!running)
            a->clb = v & ~0x3ffu;
        break;
    case P_CLBU:
        if (!running)
            a->clbu = v;
        break;
    case P_FB:
        if (!(a->cmd & PCMD_FR))
            a->fb = v & ~0xffu;
        break;
    case P_FBU:
        if (!(a->cmd & PCMD_FR))
            a->fbu = v;
        break;
    case P_IS:
        a->is &= ~v;
        update_irq(a);
        break;
    case P_IE:
        a->ie = v & PIS_MASK;
        update_irq(a);
        break;
    case P_CMD:
        port_cmd_write(a, v);
        break;
    case P_SCTL: {
        uint32_t old = a->sctl;
        a->sctl = v & 0xfff;
        if ((v & 0xf) == 1) {                  /* COMRESET asserted: no device seen */
            a->ssts = 0;
        } else if ((old & 0xf) == 1 && (v & 0xf) == 0) {
            port_reset(a);                     /* released: the disk signs on */
            if (a->cmd & PCMD_FRE) {
                a->init_d2h_sent = true;
                send_d2h(a, ATA_DRDY | ATA_DSC, 1, true);
                update_irq(a);
            }
        }
        break;
    }
    case P_SERR:
        a->serr &= ~v;
        break;
    case P_SACT:
        if (a->cmd & PCMD_ST)
            a->sact |= v;
        break;
    case P_CI:
        if (!(a->cmd & PCMD_ST)) {
            sx_log_ratelimited(SX_LOG_WARN, "dom%u: PxCI written with the port stopped",
                               sx_dm_domid(a->dm));
            a->st.unsupported++;
            break;
        }
        a->ci |= v;
        process_ci(a);
        break;
    default:
        break;
    }
}

static uint32_t reg_read(struct sx_ahci *a, unsigned off)
{
    switch (off) {
    case HBA_CAP:
        return CAP_S64A | CAP_SNCQ | CAP_SAM | CAP_ISS_G2 | CAP_NCS(NSLOTS) | (1u << 14) |
               (1u << 13) | 0;              /* PSC, SSC; NP = 0: one port */
    case HBA_GHC:
        return GHC_AE | (a->ghc & GHC_IE);
    case HBA_IS:
        return (a->is & a->ie) ? 1u : 0u;
    case HBA_PI:
        return 1;
    case HBA_VS:
        return 0x00010000;                  /* AHCI 1.0 */
    default:
        if (off >= PORT0 && off < PORT0 + PORT_SIZE)
            return port_read(a, off - PORT0);
        return 0;
    }
}

static void reg_write(struct sx_ahci *a, unsigned off, uint32_t v)
{
    if (off == HBA_GHC) {
        if (v & GHC_HR) {
            hba_reset(a);
            return;
        }
        a->ghc = v & GHC_IE;
        update_irq(a);
    } else if (off == HBA_IS) {
        /* Port 0's bit follows its PxIS & PxIE: clearing PxIS clears it. */
        update_irq(a);
    } else if (off >= PORT0 && off < PORT0 + PORT_SIZE) {
        port_write(a, off - PORT0, v);
    }
}

static uint64_t abar_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_ahci *a = opaque;
    unsigned base = (unsigned)off & ~3u, shift = ((unsigned)off & 3) * 8;
    uint64_t v = reg_read(a, base);
    if (size == 8 || shift + size * 8 > 32)
        v |= (uint64_t)reg_read(a, base + 4) << 32;
    v >>= shift;
    return size == 8 ? v : v & ((1ull << (size * 8)) - 1);
}

static void abar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_ahci *a = opaque;
    if (off & 3 || size < 4) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: ABAR %u-byte write at %#x ignored",
                           sx_dm_domid(a->dm), size, (unsigned)off);
        return;
    }
    reg_write(a, (unsigned)off, (uint32_t)val);
    if (size == 8)
        reg_write(a, (unsigned)off + 4, (uint32_t)(val >> 32));
}

static const struct sx_dm_io_ops abar_ops = { .read = abar_read, .write = abar_write };

/* ---------------------------------------------------------------- setup / teardown */

/* Controllers whose engine could not stop every command (a hung device): the kernel may still
 * complete those into their bounce buffers and through the iovec arrays in their slots, so
 * they are kept, reachable, for the life of the process. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sx_ahci *held;
static unsigned nheld;

unsigned sx_ahci_held(void)
{
    pthread_mutex_lock(&held_lock);
    unsigned n = nheld;
    pthread_mutex_unlock(&held_lock);
    return n;
}

/* Stop the engine. Idempotent. When it reports commands still running, nothing they may
 * write into is unmapped or freed afterwards (a->hold). */
static void quiesce(struct sx_ahci *a)
{
    if (a->watching) {
        sx_dm_unwatch_fd(a->dm, sx_bio_event_fd(a->bio));
        a->watching = false;
    }
    unsigned left = sx_bio_close(a->bio);
    a->bio = NULL;
    if (left) {
        sx_err("dom%u: AHCI: %u engine operations still running at teardown: their guest "
               "mappings and buffers are kept", sx_dm_domid(a->dm), left);
        a->hold = true;
    }
    if (a->hold)
        return;
    for (unsigned i = 0; i < NSLOTS; i++)
        unmap_slot(a, &a->slots[i]);
}

static void ahci_unplug(void *opaque)
{
    struct sx_ahci *a = opaque;
    sx_info("dom%u: AHCI disk unplugged", sx_dm_domid(a->dm));
    quiesce(a);
}

static void ahci_destroy(void *opaque)
{
    struct sx_ahci *a = opaque;
    quiesce(a);
    if (a->fd >= 0)
        close(a->fd);           /* the kernel holds its own reference for what still runs */
    a->fd = -1;
    if (a->hold) {              /* (the target too: an engine may still use it) */
        pthread_mutex_lock(&held_lock);
        a->held_next = held;
        held = a;
        nheld++;
        pthread_mutex_unlock(&held_lock);
        return;
    }
    sx_bio_target_close(a->target);
    for (unsigned i = 0; i < NSLOTS; i++)
        free(a->slots[i].bounce);
    free(a);
}

static const struct sx_dm_dev_ops ahci_dev_ops = {
    .name = "ahci", .unplug_mask = SX_DM_UNPLUG_DISKS, .unplug = ahci_unplug,
    .destroy = ahci_destroy,
};

/* A network disk (rbd:, nbd://, nbd+unix://): its engine has its own connection, so
 * there is no fd and no alignment rule; the target must take 512-byte sectors. */
static int open_net(struct sx_ahci *a, const struct sx_ahci_cfg *cfg, uint64_t *bytes)
{
    char msg[320];
    int rc = sx_bio_target_open(&a->target, cfg->path, cfg->read_only, msg, sizeof(msg));
    if (rc < 0) {
        sx_err("AHCI disk: %s", msg);
        return rc;
    }
    const struct sx_bio_target_info *in = sx_bio_target_info(a->target);
    if (in->block_size != SECTOR) {
        sx_err("AHCI disk %s: takes %u-byte blocks, the disk has %u-byte sectors", in->name,
               in->block_size, SECTOR);
        return -EINVAL;
    }
    a->read_only = a->read_only || in->read_only;
    a->kind = in->kind;
    *bytes = in->bytes;
    return 0;
}

static int open_image(struct sx_ahci *a, const struct sx_ahci_cfg *cfg)
{
    int flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    uint64_t bytes;
    a->fd = -1;
    a->dio_align = SECTOR;
    if (sx_bio_target_is_net(cfg->path)) {
        int rc = open_net(a, cfg, &bytes);
        if (rc < 0)
            return rc;
        a->sectors = bytes / SECTOR;
        return a->sectors ? 0 : -EINVAL;
    }
    if (!cfg->no_direct) {
        a->fd = open(cfg->path, flags | O_DIRECT);
        a->direct = a->fd >= 0;
    }
    if (a->fd < 0)
        a->fd = open(cfg->path, flags);
    if (a->fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(a->fd, &sb) < 0)
        return -errno;
    bytes = (uint64_t)sb.st_size;
    if (S_ISBLK(sb.st_mode) && ioctl(a->fd, BLKGETSIZE64, &bytes) < 0)
        return -errno;
    a->sectors = bytes / SECTOR;
    if (!a->sectors)
        return -EINVAL;
    a->dio_align = 4096;
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (a->direct && statx(a->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_mem_align &&
        !(sx.stx_dio_mem_align & (sx.stx_dio_mem_align - 1)))
        a->dio_align = sx.stx_dio_mem_align < SECTOR ? SECTOR : sx.stx_dio_mem_align;
#endif
    return 0;
}

int sx_ahci_add(struct sx_dm *dm, const struct sx_ahci_cfg *cfg, struct sx_ahci **out)
{
    if (!dm || !cfg || !cfg->path)
        return -EINVAL;
    struct sx_ahci *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->dm = dm;
    a->read_only = cfg->read_only;
    a->udma_mode = 5;
    int rc = open_image(a, cfg);
    if (rc < 0) {
        sx_err("%s: %s", a->target ? sx_bio_target_info(a->target)->name : cfg->path,
               strerror(-rc));
        if (a->fd >= 0)
            close(a->fd);
        sx_bio_target_close(a->target);
        free(a);
        return rc;
    }
    if (cfg->serial) {
        snprintf(a->serial, sizeof(a->serial), "%s", cfg->serial);
    } else {
        uint32_t h = 2166136261u;
        for (const char *p = cfg->path; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        snprintf(a->serial, sizeof(a->serial), "SX%08X", h);
    }
    snprintf(a->model, sizeof(a->model), "%s", cfg->model ? cfg->model : "splitxen AHCI disk");
    if (a->target)
        rc = sx_bio_open_target(&a->bio, a->target, ENGINE_DEPTH);
    else
        a->kind = cfg->engine != SX_BIO_AUTO ? cfg->engine : sx_bio_kind_auto(a->fd, NULL);
    if (!a->target)
        rc = sx_bio_open(&a->bio, a->kind, a->fd, ENGINE_DEPTH, 0);
    if (rc < 0 && a->kind != SX_BIO_SYNC && !a->target) {
        sx_warn("%s engine: %s; falling back to sync", sx_bio_kind_name(a->kind), strerror(-rc));
        a->kind = SX_BIO_SYNC;
        rc = sx_bio_open(&a->bio, a->kind, a->fd, ENGINE_DEPTH, 0);
    }
    if (rc < 0) {
        if (a->fd >= 0)
            close(a->fd);
        sx_bio_target_close(a->target);
        free(a);
        return rc;
    }
    rc = sx_dm_dev_add(dm, &ahci_dev_ops, a, &a->dev);
    if (rc < 0) {
        sx_bio_close(a->bio);
        if (a->fd >= 0)
            close(a->fd);
        sx_bio_target_close(a->target);
        free(a);
        return rc;
    }
    /* From here on sx_dm_dev_remove frees everything. */
    struct sx_pci_info info = {
        .devfn = cfg->devfn, .vendor = 0x8086, .device = 0x2922, .subsys_vendor = 0x1af4,
        .subsys_id = 0x1100, .class_code = 0x010601, .revision = 0x02, .irq_pin = 1,
    };
    rc = sx_pci_add(a->dev, &info, &a->pci);
    if (rc == 0)
        rc = sx_pci_bar(a->pci, 5, ABAR_SIZE, SX_PCI_BAR_MEM32, &abar_ops, a);
    if (rc == 0) {
        rc = sx_dm_watch_fd(dm, sx_bio_event_fd(a->bio), EPOLLIN, on_engine_event, a);
        a->watching = rc == 0;
    }
    if (rc < 0) {
        sx_dm_dev_remove(a->dev);
        return rc;
    }
    hba_reset(a);
    a->st.resets = 0;
    sx_info("AHCI disk %s: %llu sectors%s, engine %s%s",
            a->target ? sx_bio_target_info(a->target)->name : cfg->path,
            (unsigned long long)a->sectors, a->read_only ? " (read-only)" : "",
            sx_bio_kind_name(a->kind), a->direct ? ", O_DIRECT" : "");
    if (out)
        *out = a;
    return 0;
}

const struct sx_ahci_stats *sx_ahci_stats(const struct sx_ahci *a) { return &a->st; }
uint64_t sx_ahci_sectors(const struct sx_ahci *a) { return a->sectors; }
struct sx_pci *sx_ahci_pci(struct sx_ahci *a) { return a->pci; }
enum sx_bio_kind sx_ahci_engine(const struct sx_ahci *a) { return a->kind; }
bool sx_ahci_direct(const struct sx_ahci *a) { return a->direct; }
unsigned sx_ahci_inflight(const struct sx_ahci *a) { return a->inflight; }

int sx_ahci_poll(struct sx_ahci *a, int timeout_ms)
{
    if (!a->bio)
        return -ENODEV;
    struct pollfd pfd = { .fd = sx_bio_event_fd(a->bio), .events = POLLIN };
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    on_engine_event(a, POLLIN);
    return 1;
}

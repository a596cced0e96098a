/* The emulated 82540EM; see e1000.h. Register numbers and bits are Intel's (8254x SDM) and
 * follow QEMU's hw/net/e1000.c where the datasheet leaves room. */
#define SX_LOG_MODULE "e1000"
#include "device-model/e1000/e1000.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "netdev/tap.h"

/* ---- registers (byte offsets in BAR0) ---- */
enum {
    CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, CTRL_EXT = 0x0018,
    MDIC = 0x0020, ICR = 0x00c0, ITR = 0x00c4, ICS = 0x00c8, IMS = 0x00d0, IMC = 0x00d8,
    RCTL = 0x0100, TCTL = 0x0400, TIPG = 0x0410, PBA = 0x1000,
    RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810, RDT = 0x2818,
    TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818,
    STATS_FIRST = 0x4000, STATS_END = 0x4100,
    MTA = 0x5200, RA = 0x5400, VFTA = 0x5600, MANC = 0x5820,
    BAR0_SIZE = 0x20000, BAR1_SIZE = 0x40,
};
/* statistics */
enum {
    MPC = 0x4010, GPRC = 0x4074, BPRC = 0x4078, MPRC = 0x407c, GPTC = 0x4080,
    GORCL = 0x4088, GORCH = 0x408c, GOTCL = 0x4090, GOTCH = 0x4094, RNBC = 0x40a0,
    ROC = 0x40b0, TORL = 0x40c0, TORH = 0x40c4, TOTL = 0x40c8, TOTH = 0x40cc, TPR = 0x40d0,
    TPT = 0x40d4, MPTC = 0x40f0, BPTC = 0x40f4, TSCTC = 0x40f8,
};

#define CTRL_SLU        (1u << 6)
#define CTRL_RST        (1u << 26)
#define CTRL_PHY_RST    (1u << 31)
#define STATUS_FD       0x1u
#define STATUS_LU       0x2u
#define STATUS_DEFAULT  (0x80000000u | 0x80000u /* GIO master enable */ | 0x300u /* ASDV */ | \
                         0x80u /* 1000 */ | STATUS_FD | STATUS_LU)

#define EECD_SK   0x1u
#define EECD_CS   0x2u
#define EECD_DI   0x4u
#define EECD_DO   0x8u
#define EECD_FWE  0x30u
#define EECD_REQ  0x40u
#define EECD_GNT  0x80u
#define EECD_PRES 0x100u
#define EERD_START 0x1u
#define EERD_DONE  0x10u

#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ  (2u << 26)
#define MDIC_READY    (1u << 28)
#define MDIC_INT_EN   (1u << 29)
#define MDIC_ERROR    (1u << 30)

#define ICR_TXDW   0x01u
#define ICR_TXQE   0x02u
#define ICR_LSC    0x04u
#define ICR_RXDMT0 0x10u
#define ICR_RXO    0x40u
#define ICR_RXT0   0x80u
#define ICR_MDAC   0x200u
#define ICR_INT_ASSERTED 0x80000000u

#define RCTL_EN    (1u << 1)
#define RCTL_UPE   (1u << 3)
#define RCTL_MPE   (1u << 4)
#define RCTL_LPE   (1u << 5)
#define RCTL_BAM   (1u << 15)
#define RCTL_BSEX  (1u << 25)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN    (1u << 1)
#define RAH_AV     (1u << 31)

/* tx descriptor bits (in the lower dword) */
#define TXD_DEXT   (1u << 29)
#define TXD_DTYP_D (1u << 20)
#define TXD_DTYP_MASK (0xfu << 20)
#define TXD_EOP    (1u << 24)
#define TXD_IC     (1u << 26)     /* legacy: insert checksum */
#define TXD_TSE    (1u << 26)     /* extended: TCP segmentation */
#define TXD_RS     (1u << 27)
#define TXD_RPS    (1u << 28)
#define TXD_STAT_DD 0x1u
#define TUCMD_TCP  0x1u
#define TUCMD_IP   0x2u
#define POPTS_IXSM 0x1u
#define POPTS_TXSM 0x2u

#define RXD_STAT_DD   0x1u
#define RXD_STAT_EOP  0x2u
#define RXD_STAT_IXSM 0x4u

#define PHY_CTRL 0
#define PHY_STATUS 1
#define PHY_RESET 0x8000u
#define PHY_STATUS_LINK 0x4u

struct tx_desc { uint64_t addr; uint32_t lower, upper; };
struct rx_desc { uint64_t addr; uint16_t length, csum; uint8_t status, errors; uint16_t special; };
_Static_assert(sizeof(struct tx_desc) == 16 && sizeof(struct rx_desc) == 16, "descriptors");

struct tx_ctx {
    uint8_t ipcss, ipcso, tucss, tucso, tucmd, hdr_len;
    uint16_t ipcse, tucse, mss;
    uint32_t paylen;
};

struct sx_e1000 {
    struct sx_dm *dm;
    struct sx_dm_dev *dev;
    struct sx_pci *pci;
    struct sx_tap *tap;
    int world_fd;
    bool watched, paused, unplugged;
    char ifname[16];
    uint8_t mac[6];
    uint32_t *regs;                 /* BAR0 as 32-bit registers */
    uint16_t phy[32];
    uint16_t eeprom[64];
    uint32_t ioaddr;
    struct { uint32_t val_in, bitnum_in, bitnum_out, old; bool reading; } ee;
    /* transmit: the frame being assembled across descriptors (and kicks) */
    struct tx_ctx ctx;
    bool tx_tse, tx_first;
    uint8_t tx_popts;
    bool tx_overflow, tx_dma_bad;
    size_t tx_len;
    uint8_t *tx_buf;                /* SX_TAP_VNET_HDR_LEN + SX_E1000_MAX_FRAME */
    /* receive: one frame read from the world and not yet delivered */
    uint8_t *rx_buf;
    size_t rx_len;                  /* frame bytes in rx_buf after the vnet header, 0: none */
    struct sx_e1000_stats st;
};

static const uint16_t eeprom_template[64] = {
    0x0000, 0x0000, 0x0000, 0x0000, 0xffff, 0x0000, 0x0000, 0x0000,
    0x3000, 0x1000, 0x6403, 0x100e, 0x8086, 0x100e, 0x8086, 0x3040,
    0x0008, 0x2000, 0x7e14, 0x0048, 0x1000, 0x00d8, 0x0000, 0x2700,
    0x6cc9, 0x3150, 0x0722, 0x040b, 0x0984, 0x0000, 0xc000, 0x0706,
    0x1008, 0x0000, 0x0f04, 0x7fff, 0x4d01, 0xffff, 0xffff, 0xffff,
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
    0x0100, 0x4000, 0x121c, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x0000,
};

static inline uint32_t *R(struct sx_e1000 *e, unsigned off) { return &e->regs[off >> 2]; }

/* ---------------- interrupts ---------------- */

static void irq_update(struct sx_e1000 *e)
{
    uint32_t *icr = R(e, ICR);
    bool level = (*icr & *R(e, IMS) & ~ICR_INT_ASSERTED) != 0;
    *icr = level ? *icr | ICR_INT_ASSERTED : *icr & ~ICR_INT_ASSERTED;
    sx_pci_set_irq(e->pci, level);
}

static void set_cause(struct sx_e1000 *e, uint32_t bits)
{
    uint32_t *icr = R(e, ICR);
    bool was = (*icr & *R(e, IMS) & ~ICR_INT_ASSERTED) != 0;
    *icr |= bits & ~ICR_INT_ASSERTED;
    irq_update(e);
    if (!was && (*icr & ICR_INT_ASSERTED))
        e->st.irq_raises++;
}

/* ---------------- reset, EEPROM, PHY ---------------- */

static void phy_reset(struct sx_e1000 *e)
{
    memset(e->phy, 0, sizeof(e->phy));
    e->phy[PHY_CTRL] = 0x1140;          /* autoneg enabled, full duplex, 1000 */
    e->phy[PHY_STATUS] = 0x796d;        /* autoneg complete, link up */
    e->phy[2] = 0x0141;                 /* M88E1011 */
    e->phy[3] = 0x0c20;
    e->phy[4] = 0x0de1;
    e->phy[5] = 0x41e1;
    e->phy[6] = 0x0001;
    e->phy[9] = 0x0e00;
    e->phy[10] = 0x3c00;
    e->phy[15] = 0x3000;
    e->phy[16] = 0x0360;
    e->phy[17] = 0xac00;
    e->phy[20] = 0x0d60;
    if (!(*R(e, STATUS) & STATUS_LU))
        e->phy[PHY_STATUS] &= (uint16_t)~PHY_STATUS_LINK;
}

static void dev_reset(struct sx_e1000 *e)
{
    bool link = !e->regs[STATUS >> 2] || (*R(e, STATUS) & STATUS_LU);
    memset(e->regs, 0, BAR0_SIZE);
    *R(e, CTRL) = (1u << 18) | (1u << 20) /* SWDPIN0/2 */ | (2u << 8) /* 1000 */ | CTRL_SLU;
    *R(e, STATUS) = link ? STATUS_DEFAULT : STATUS_DEFAULT & ~STATUS_LU;
    *R(e, EECD) = 0x10u /* FWE: writes disabled */ | EECD_PRES;
    *R(e, PBA) = 0x00100030;
    *R(e, MANC) = 0x60000;              /* ARP request filtering, ARP interrupt */
    *R(e, TIPG) = 0;
    /* Receive address 0 from the EEPROM, valid. */
    *R(e, RA) = (uint32_t)e->mac[0] | (uint32_t)e->mac[1] << 8 | (uint32_t)e->mac[2] << 16 |
                (uint32_t)e->mac[3] << 24;
    *R(e, RA + 4) = (uint32_t)e->mac[4] | (uint32_t)e->mac[5] << 8 | RAH_AV;
    phy_reset(e);
    memset(&e->ee, 0, sizeof(e->ee));
    memset(&e->ctx, 0, sizeof(e->ctx));
    e->tx_len = 0;
    e->tx_first = true;
    e->tx_overflow = e->tx_dma_bad = false;
    e->rx_len = 0;
    e->st.resets++;
    irq_update(e);
}

static void eeprom_init(struct sx_e1000 *e)
{
    memcpy(e->eeprom, eeprom_template, sizeof(e->eeprom));
    for (unsigned i = 0; i < 3; i++)
        e->eeprom[i] = (uint16_t)(e->mac[2 * i] | e->mac[2 * i + 1] << 8);
    uint16_t sum = 0;
    for (unsigned i = 0; i < 63; i++)
        sum = (uint16_t)(sum + e->eeprom[i]);
    e->eeprom[63] = (uint16_t)(0xbaba - sum);
}

/* Microwire, as Linux's e1000 drives an 82540's 64-word EEPROM: CS up, 3 opcode bits (110 =
 * read) and 6 address bits clocked in on SK rising edges, then 16 data bits out on DO. */
static void eecd_write(struct sx_e1000 *e, uint32_t val)
{
    uint32_t old = e->ee.old;
    e->ee.old = val & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ);
    if (!(val & EECD_CS))
        return;
    if ((val ^ old) & EECD_CS) {        /* CS rising edge: start over */
        e->ee.val_in = e->ee.bitnum_in = e->ee.bitnum_out = 0;
        e->ee.reading = false;
    }
    if (!((val ^ old) & EECD_SK))
        return;
    if (!(val & EECD_SK)) {             /* falling edge: next output bit */
        e->ee.bitnum_out++;
        return;
    }
    e->ee.val_in = e->ee.val_in << 1 | ((val & EECD_DI) ? 1 : 0);
    if (++e->ee.bitnum_in == 9 && !e->ee.reading) {
        e->ee.bitnum_out = ((e->ee.val_in & 0x3f) << 4) - 1;
        e->ee.reading = ((e->ee.val_in >> 6) & 7) == 6;
        if (e->ee.reading)
            e->st.eeprom_reads++;
    }
}

static uint32_t eecd_read(struct sx_e1000 *e)
{
    uint32_t v = EECD_PRES | EECD_GNT | e->ee.old;
    unsigned bit = e->ee.bitnum_out;
    if (!e->ee.reading || ((e->eeprom[(bit >> 4) & 0x3f] >> ((bit & 0xf) ^ 0xf)) & 1))
        v |= EECD_DO;
    return v;
}

static uint32_t eerd_read(struct sx_e1000 *e)
{
    uint32_t v = *R(e, EERD);
    if (!(v & EERD_START))
        return v;
    unsigned idx = (v >> 8) & 0xff;
    if (idx > 63)
        return v | EERD_DONE;
    e->st.eeprom_reads++;
    return (uint32_t)e->eeprom[idx] << 16 | EERD_DONE | (v & 0xffff);
}

static void mdic_write(struct sx_e1000 *e, uint32_t val)
{
    unsigned reg = (val >> 16) & 0x1f, phyaddr = (val >> 21) & 0x1f;
    uint32_t op = val & (3u << 26);
    uint32_t data = val & 0xffff;
    e->st.mdic_ops++;
    if (phyaddr != 1) {
        val |= MDIC_ERROR;
    } else if (op == MDIC_OP_READ) {
        data = e->phy[reg];
    } else if (op == MDIC_OP_WRITE) {
        if (reg == PHY_CTRL) {
            /* Reset and restart-autonegotiation bits self-clear; the link stays as it is. */
            e->phy[PHY_CTRL] = (uint16_t)(data & ~(PHY_RESET | 0x0200u));
        } else if (reg != PHY_STATUS && reg != 2 && reg != 3 && reg != 5 && reg != 6 &&
                   reg != 10 && reg != 17) {
            e->phy[reg] = (uint16_t)data;
        }
    } else {
        val |= MDIC_ERROR;
    }
    *R(e, MDIC) = (val & ~0xffffu & ~MDIC_READY) | data | MDIC_READY;
    if (val & MDIC_INT_EN)
        set_cause(e, ICR_MDAC);
}

void sx_e1000_set_link(struct sx_e1000 *e, bool up)
{
    uint32_t *s = R(e, STATUS);
    bool was = *s & STATUS_LU;
    if (was == up)
        return;
    *s = up ? *s | STATUS_LU : *s & ~STATUS_LU;
    e->phy[PHY_STATUS] = up ? e->phy[PHY_STATUS] | PHY_STATUS_LINK
                            : e->phy[PHY_STATUS] & (uint16_t)~PHY_STATUS_LINK;
    set_cause(e, ICR_LSC);
}

/* ---------------- checksums ---------------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* Ones' complement checksum of [start, end) stored at `at` (all within len; caller checked). */
static void insert_csum(uint8_t *f, size_t start, size_t end, size_t at)
{
    put_be16(f + at, (uint16_t)~csum_fold(csum_add(0, f + start, end - start)));
}

/* ---------------- transmit ---------------- */

static int world_send(struct sx_e1000 *e, const struct virtio_net_hdr_v1 *vh, const uint8_t *f,
                      size_t len)
{
    struct iovec iov[2] = { { (void *)vh, SX_TAP_VNET_HDR_LEN }, { (void *)f, len } };
    ssize_t n = writev(e->world_fd, iov, 2);
    if (n != (ssize_t)(len + SX_TAP_VNET_HDR_LEN)) {
        e->st.tx_world_errors++;
        return -EIO;
    }
    return 0;
}

static void tx_count(struct sx_e1000 *e, const uint8_t *f, size_t len)
{
    e->st.tx_frames++;
    e->st.tx_bytes += len;
    uint64_t oct = ((uint64_t)*R(e, GOTCH) << 32 | *R(e, GOTCL)) + len + 4;
    *R(e, GOTCL) = (uint32_t)oct;
    *R(e, GOTCH) = (uint32_t)(oct >> 32);
    uint64_t tot = ((uint64_t)*R(e, TOTH) << 32 | *R(e, TOTL)) + len + 4;
    *R(e, TOTL) = (uint32_t)tot;
    *R(e, TOTH) = (uint32_t)(tot >> 32);
    (*R(e, GPTC))++;
    (*R(e, TPT))++;
    if (len >= 6 && f[0] == 0xff && f[1] == 0xff && f[2] == 0xff && f[3] == 0xff &&
        f[4] == 0xff && f[5] == 0xff)
        (*R(e, BPTC))++;
    else if (len >= 1 && (f[0] & 1))
        (*R(e, MPTC))++;
}

/* A TSO frame: fix the headers of the whole frame as one big packet and let the world's GSO cut
 * it. 0, or -EINVAL when the context does not describe this frame. */
static int tx_tso(struct sx_e1000 *e, uint8_t *f, size_t len, struct virtio_net_hdr_v1 *vh)
{
    const struct tx_ctx *c = &e->ctx;
    bool v4 = c->tucmd & TUCMD_IP;
    size_t l3 = c->ipcss, l4 = c->tucss;
    if (!(c->tucmd & TUCMD_TCP) || c->mss == 0 || c->hdr_len > len || l4 < l3 + 20 ||
        l4 + 20 > c->hdr_len || (size_t)c->tucso + 2 > c->hdr_len || c->tucso < l4 ||
        len - l3 > 0xffff)
        return -EINVAL;
    uint32_t l4len = (uint32_t)(len - l4);
    uint32_t sum;
    if (v4) {
        if ((f[l3] >> 4) != 4 || (size_t)(f[l3] & 0xf) * 4 + l3 > l4)
            return -EINVAL;
        put_be16(f + l3 + 2, (uint16_t)(len - l3));
        put_be16(f + l3 + 10, 0);
        insert_csum(f, l3, l3 + (size_t)(f[l3] & 0xf) * 4, l3 + 10);
        sum = csum_add(0, f + l3 + 12, 8) + 6 + l4len;
    } else {
        if (l4 < l3 + 40 || (f[l3] >> 4) != 6)
            return -EINVAL;
        put_be16(f + l3 + 4, (uint16_t)(len - l3 - 40));
        sum = csum_add(0, f + l3 + 8, 32) + 6 + l4len;
    }
    /* CHECKSUM_PARTIAL convention: the field holds the folded pseudo-header sum. */
    put_be16(f + c->tucso, csum_fold(sum));
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = (uint16_t)l4;
    vh->csum_offset = (uint16_t)(c->tucso - l4);
    vh->hdr_len = c->hdr_len;
    vh->gso_size = c->mss;
    vh->gso_type = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    e->st.tx_tso++;
    return 0;
}

static void tx_frame(struct sx_e1000 *e, bool legacy, uint32_t lower, uint32_t upper)
{
    uint8_t *f = e->tx_buf + SX_TAP_VNET_HDR_LEN;
    size_t len = e->tx_len;
    struct virtio_net_hdr_v1 vh = { 0 };
    if (e->tx_overflow || e->tx_dma_bad) {
        e->st.tx_oversize += e->tx_overflow;
        e->st.tx_dropped++;
        return;
    }
    if (len < 14) {
        e->st.tx_dropped++;
        return;
    }
    if (legacy) {
        unsigned cso = (lower >> 16) & 0xff, css = (upper >> 8) & 0xff;
        if ((lower & TXD_IC) && css < len && cso + 2 <= len && cso >= css) {
            put_be16(f + cso, 0);
            insert_csum(f, css, len, cso);
            e->st.tx_csum++;
        }
    } else if (e->tx_tse) {
        if (tx_tso(e, f, len, &vh) < 0) {
            e->st.tx_bad_ctx++;
            e->st.tx_dropped++;
            return;
        }
        (*R(e, TSCTC))++;
    } else {
        const struct tx_ctx *c = &e->ctx;
        if (e->tx_popts & POPTS_IXSM) {
            size_t end = c->ipcse ? (size_t)c->ipcse + 1 : len;
            if (c->ipcss < end && end <= len && (size_t)c->ipcso + 2 <= len) {
                put_be16(f + c->ipcso, 0);
                insert_csum(f, c->ipcss, end, c->ipcso);
            } else {
                e->st.tx_bad_ctx++;
            }
        }
        if (e->tx_popts & POPTS_TXSM) {
            if (c->tucso >= c->tucss && (size_t)c->tucso + 2 <= len && c->tucss < len &&
                (c->tucse == 0 || (size_t)c->tucse + 1 == len)) {
                vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                vh.csum_start = c->tucss;
                vh.csum_offset = (uint16_t)(c->tucso - c->tucss);
                e->st.tx_csum++;
            } else if (c->tucso >= c->tucss && (size_t)c->tucso + 2 <= len &&
                       c->tucse >= c->tucss && (size_t)c->tucse < len) {
                insert_csum(f, c->tucss, (size_t)c->tucse + 1, c->tucso);   /* a partial range */
                e->st.tx_csum++;
            } else {
                e->st.tx_bad_ctx++;
            }
        }
    }
    if (world_send(e, &vh, f, len) == 0)
        tx_count(e, f, len);
    else
        e->st.tx_dropped++;
}

static void tx_append(struct sx_e1000 *e, uint64_t addr, size_t len)
{
    if (len == 0 || e->tx_overflow || e->tx_dma_bad)
        return;
    if (e->tx_len + len > SX_E1000_MAX_FRAME) {
        e->tx_overflow = true;
        return;
    }
    if (sx_pci_dma_read(e->pci, addr, e->tx_buf + SX_TAP_VNET_HDR_LEN + e->tx_len, len) < 0) {
        e->st.buf_dma_errors++;
        e->tx_dma_bad = true;       /* drop the frame, keep walking the ring */
        return;
    }
    e->tx_len += len;
}

static uint64_t ring_base(struct sx_e1000 *e, unsigned bal, unsigned bah)
{
    return (uint64_t)*R(e, bah) << 32 | (*R(e, bal) & ~0xfu);
}

/* Returns true if the descriptor asked for a status report (RS). */
static bool tx_desc(struct sx_e1000 *e, const struct tx_desc *d)
{
    uint32_t lower = d->lower, upper = d->upper;
    if (lower & TXD_DEXT) {
        uint32_t dtyp = lower & TXD_DTYP_MASK;
        if (dtyp == 0) {                        /* context descriptor */
            struct tx_ctx *c = &e->ctx;
            uint32_t ip = (uint32_t)d->addr, tu = (uint32_t)(d->addr >> 32);
            c->ipcss = (uint8_t)ip;
            c->ipcso = (uint8_t)(ip >> 8);
            c->ipcse = (uint16_t)(ip >> 16);
            c->tucss = (uint8_t)tu;
            c->tucso = (uint8_t)(tu >> 8);
            c->tucse = (uint16_t)(tu >> 16);
            c->paylen = lower & 0xfffff;
            c->tucmd = (uint8_t)(lower >> 24);
            c->hdr_len = (uint8_t)(upper >> 8);
            c->mss = (uint16_t)(upper >> 16);
            return lower & (TXD_RS | TXD_RPS);
        }
        if (dtyp != TXD_DTYP_D) {
            e->st.tx_bad_ctx++;
            return lower & (TXD_RS | TXD_RPS);
        }
        if (e->tx_first) {
            e->tx_popts = (uint8_t)(upper >> 8);
            e->tx_tse = lower & TXD_TSE;
            e->tx_first = false;
        }
        tx_append(e, d->addr, lower & 0xfffff);
    } else {
        e->tx_tse = false;
        e->tx_first = false;
        tx_append(e, d->addr, lower & 0xffff);
    }
    if (lower & TXD_EOP) {
        tx_frame(e, !(lower & TXD_DEXT), lower, upper);
        e->tx_len = 0;
        e->tx_first = true;
        e->tx_overflow = e->tx_dma_bad = false;
    }
    return lower & (TXD_RS | TXD_RPS);
}

static void tx_run(struct sx_e1000 *e)
{
    if (!(*R(e, TCTL) & TCTL_EN) || e->unplugged)
        return;
    uint32_t n = (*R(e, TDLEN) & 0xfff80u) / 16;
    uint32_t head = *R(e, TDH), tail = *R(e, TDT);
    if (head == tail)
        return;
    if (n == 0 || head >= n || tail >= n) {
        e->st.ring_errors++;
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: tx ring head %u tail %u outside %u descriptors",
                           sx_dm_domid(e->dm), head, tail, n);
        return;
    }
    uint64_t base = ring_base(e, TDBAL, TDBAH);
    uint32_t cause = ICR_TXQE;
    for (uint32_t budget = n; head != tail; budget--) {
        if (budget == 0) {
            e->st.ring_budget++;
            break;
        }
        uint64_t at = base + (uint64_t)head * 16;
        struct tx_desc d;
        if (sx_pci_dma_read(e->pci, at, &d, sizeof(d)) < 0) {
            e->st.desc_dma_errors++;
            sx_log_ratelimited(SX_LOG_WARN, "dom%u: tx descriptor at %#" PRIx64 " unreadable",
                               sx_dm_domid(e->dm), at);
            break;
        }
        if (tx_desc(e, &d)) {
            uint8_t status = TXD_STAT_DD;   /* the upper dword's status byte */
            if (sx_pci_dma_write(e->pci, at + 12, &status, 1) < 0)
                e->st.desc_dma_errors++;
            cause |= ICR_TXDW;
        }
        head = head + 1 == n ? 0 : head + 1;
        *R(e, TDH) = head;
    }
    set_cause(e, cause);
}

/* ---------------- receive ---------------- */

static size_t rx_bufsize(uint32_t rctl)
{
    static const size_t sz[2][4] = { { 2048, 1024, 512, 256 }, { 2048, 16384, 8192, 4096 } };
    return sz[(rctl & RCTL_BSEX) ? 1 : 0][(rctl >> 16) & 3];
}

static bool rx_accept(struct sx_e1000 *e, const uint8_t *f)
{
    uint32_t rctl = *R(e, RCTL);
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    if (!memcmp(f, bcast, 6))
        return rctl & RCTL_BAM;
    if (f[0] & 1) {
        if (rctl & RCTL_MPE)
            return true;
        static const unsigned shift[4] = { 4, 3, 2, 0 };
        unsigned h = (((unsigned)f[5] << 8 | f[4]) >> shift[(rctl >> 12) & 3]) & 0xfff;
        return (*R(e, MTA + (h >> 5) * 4) >> (h & 31)) & 1;
    }
    if (rctl & RCTL_UPE)
        return true;
    for (unsigned i = 0; i < 16; i++) {
        uint32_t lo = *R(e, RA + 8 * i), hi = *R(e, RA + 8 * i + 4);
        if (!(hi & RAH_AV))
            continue;
        uint8_t m[6] = { (uint8_t)lo, (uint8_t)(lo >> 8), (uint8_t)(lo >> 16),
                         (uint8_t)(lo >> 24), (uint8_t)hi, (uint8_t)(hi >> 8) };
        if (!memcmp(f, m, 6))
            return true;
    }
    return false;
}

/* Free rx descriptors, or -1 when the ring registers are unusable. */
static int64_t rx_free(struct sx_e1000 *e, uint32_t *n_out)
{
    uint32_t n = (*R(e, RDLEN) & 0xfff80u) / 16;
    uint32_t head = *R(e, RDH), tail = *R(e, RDT);
    *n_out = n;
    if (n == 0 || head >= n || tail >= n)
        return -1;
    return tail >= head ? tail - head : n - head + tail;
}

/* Deliver the held frame. 1 delivered (or dropped for good), 0 no room: keep it. */
static int rx_deliver(struct sx_e1000 *e)
{
    uint32_t rctl = *R(e, RCTL);
    uint8_t *f = e->rx_buf + SX_TAP_VNET_HDR_LEN;
    size_t len = e->rx_len;
    if (!(rctl & RCTL_EN) || e->unplugged) {
        e->st.rx_disabled++;
        (*R(e, MPC))++;
        return 1;
    }
    if (!rx_accept(e, f)) {
        e->st.rx_filtered++;
        return 1;
    }
    if (len < 60) {                     /* pad runts as the wire would */
        memset(f + len, 0, 60 - len);
        len = 60;
    }
    if (len > 1518 && !(rctl & RCTL_LPE)) {
        e->st.rx_oversize++;
        (*R(e, ROC))++;
        return 1;
    }
    size_t total = len + ((rctl & RCTL_SECRC) ? 0 : 4);   /* the CRC the wire would carry */
    size_t bsize = rx_bufsize(rctl);
    uint32_t n;
    int64_t nfree = rx_free(e, &n);
    if (nfree < 0) {
        e->st.ring_errors++;
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: rx ring head %u tail %u outside %u descriptors",
                           sx_dm_domid(e->dm), *R(e, RDH), *R(e, RDT), n);
        return 0;
    }
    size_t need = (total + bsize - 1) / bsize;
    if ((uint64_t)nfree < need) {
        if (need > n) {                 /* could never fit */
            e->st.rx_oversize++;
            return 1;
        }
        (*R(e, RNBC))++;
        return 0;
    }
    uint64_t base = ring_base(e, RDBAL, RDBAH);
    uint32_t head = *R(e, RDH);
    memset(f + len, 0, total - len);    /* CRC bytes: zeros */
    for (size_t off = 0; off < total;) {
        uint64_t at = base + (uint64_t)head * 16;
        struct rx_desc d;
        size_t chunk = total - off < bsize ? total - off : bsize;
        if (sx_pci_dma_read(e->pci, at, &d, sizeof(d)) < 0) {
            e->st.desc_dma_errors++;
            return 0;                   /* ring unusable: hold the frame */
        }
        uint64_t addr = d.addr;
        struct rx_desc wb = { .addr = addr, .length = (uint16_t)chunk,
                              .status = RXD_STAT_DD | RXD_STAT_IXSM };
        if (addr && sx_pci_dma_write(e->pci, addr, f + off, chunk) < 0) {
            e->st.buf_dma_errors++;
            wb.errors = 0x80;           /* RXE */
        }
        off += chunk;
        if (off >= total)
            wb.status |= RXD_STAT_EOP;
        /* The buffer's bytes before the descriptor's DD: the guest reads them after DD. */
        if (sx_pci_dma_write(e->pci, at, &wb, sizeof(wb)) < 0)
            e->st.desc_dma_errors++;
        head = head + 1 == n ? 0 : head + 1;
        *R(e, RDH) = head;
    }
    e->st.rx_frames++;
    e->st.rx_bytes += len;
    uint64_t oct = ((uint64_t)*R(e, GORCH) << 32 | *R(e, GORCL)) + total;
    *R(e, GORCL) = (uint32_t)oct;
    *R(e, GORCH) = (uint32_t)(oct >> 32);
    uint64_t tot = ((uint64_t)*R(e, TORH) << 32 | *R(e, TORL)) + total;
    *R(e, TORL) = (uint32_t)tot;
    *R(e, TORH) = (uint32_t)(tot >> 32);
    (*R(e, GPRC))++;
    (*R(e, TPR))++;
    if (f[0] & 1)
        (*R(e, f[0] == 0xff && f[1] == 0xff ? BPRC : MPRC))++;
    return 1;
}

/* Complete a partial checksum the world handed us (it should not: offloads are off). */
static void rx_fix_csum(struct sx_e1000 *e)
{
    const struct virtio_net_hdr_v1 *vh = (const void *)e->rx_buf;
    if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        return;
    size_t start = vh->csum_start, at = start + vh->csum_offset;
    uint8_t *f = e->rx_buf + SX_TAP_VNET_HDR_LEN;
    if (start < e->rx_len && at + 2 <= e->rx_len)
        put_be16(f + at, (uint16_t)~csum_fold(csum_add(0, f + start, e->rx_len - start)));
}

static void world_ready(void *opaque, uint32_t events);

static void world_lost(struct sx_e1000 *e, int err)
{
    e->st.world_errors++;
    if (e->watched && !e->paused)
        sx_dm_unwatch_fd(e->dm, e->world_fd);
    if (e->watched)
        sx_warn("dom%u: world side %s failed (%s); no more receive", sx_dm_domid(e->dm),
                e->ifname[0] ? e->ifname : "fd", strerror(-err));
    e->watched = false;
}

int sx_e1000_poll(struct sx_e1000 *e)
{
    int delivered = 0;
    for (unsigned i = 0; i < 256; i++) {
        if (e->rx_len == 0) {
            ssize_t r = read(e->world_fd, e->rx_buf, SX_TAP_VNET_HDR_LEN + SX_E1000_MAX_FRAME);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;          /* drained */
            if (r <= 0) {       /* the TAP went away (or the test's peer closed): stop reading */
                world_lost(e, r < 0 ? -errno : -EPIPE);
                break;
            }
            if ((size_t)r < SX_TAP_VNET_HDR_LEN + 14) {
                e->st.rx_short++;
                continue;
            }
            e->rx_len = (size_t)r - SX_TAP_VNET_HDR_LEN;
            rx_fix_csum(e);
        }
        size_t was = e->st.rx_frames;
        if (!rx_deliver(e))
            break;
        delivered += e->st.rx_frames != was;
        e->rx_len = 0;
    }
    if (delivered)
        set_cause(e, ICR_RXT0);
    /* Holding a frame: stop watching the world until the guest posts buffers (RDT). */
    bool park = e->rx_len != 0;
    if (park != e->paused) {
        e->paused = park;
        if (park)
            e->st.rx_paused++;
        if (e->watched) {
            if (park)
                sx_dm_unwatch_fd(e->dm, e->world_fd);
            else if (sx_dm_watch_fd(e->dm, e->world_fd, EPOLLIN, world_ready, e) < 0)
                sx_warn("cannot watch the world fd again");
        }
    }
    return delivered;
}

static void world_ready(void *opaque, uint32_t events)
{
    struct sx_e1000 *e = opaque;
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        world_lost(e, -EIO);
        return;
    }
    sx_e1000_poll(e);
}

/* ---------------- register access ---------------- */

static uint32_t reg_read(struct sx_e1000 *e, uint32_t off)
{
    off &= BAR0_SIZE - 4;
    uint32_t v;
    switch (off) {
    case ICR:
        v = *R(e, ICR);
        *R(e, ICR) = 0;                 /* read to clear */
        irq_update(e);
        return v;
    case EECD:
        return eecd_read(e);
    case EERD:
        return eerd_read(e);
    case IMC: case ICS:
        return 0;
    case STATUS: case CTRL: case CTRL_EXT: case MDIC: case IMS: case RCTL: case TCTL:
    default:
        break;
    }
    v = *R(e, off);
    if (off >= STATS_FIRST && off < STATS_END)
        *R(e, off) = 0;                 /* statistics clear on read */
    return v;
}

static void reg_write(struct sx_e1000 *e, uint32_t off, uint32_t val)
{
    off &= BAR0_SIZE - 4;
    switch (off) {
    case CTRL:
        if (val & CTRL_RST) {
            dev_reset(e);
            return;
        }
        *R(e, CTRL) = val & ~(CTRL_RST | CTRL_PHY_RST);
        return;
    case STATUS:
        return;                         /* read-only */
    case ICS:
        set_cause(e, val);
        return;
    case EECD:
        eecd_write(e, val);
        *R(e, EECD) = val;
        return;
    case EERD:
        *R(e, EERD) = val & 0xff01u;    /* address and start */
        return;
    case MDIC:
        mdic_write(e, val);
        return;
    case ICR:
        *R(e, ICR) &= ~val;             /* write one to clear */
        irq_update(e);
        return;
    case IMS:
        *R(e, IMS) |= val & 0x1ffffu;
        irq_update(e);
        return;
    case IMC:
        *R(e, IMS) &= ~val;
        irq_update(e);
        return;
    case RCTL:
        *R(e, RCTL) = val;
        if (e->rx_len || e->paused)
            sx_e1000_poll(e);
        return;
    case TCTL:
        *R(e, TCTL) = val;
        tx_run(e);
        return;
    case RDLEN: case TDLEN:
        *R(e, off) = val & 0xfff80u;
        return;
    case RDH: case RDT: case TDH: case TDT:
        *R(e, off) = val & 0xffffu;
        if (off == TDT)
            tx_run(e);
        else if (off == RDT && (e->rx_len || e->paused))
            sx_e1000_poll(e);
        return;
    default:
        break;
    }
    if (off >= STATS_FIRST && off < STATS_END)
        return;                         /* statistics are read-only */
    *R(e, off) = val;
}

static uint64_t bar0_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_e1000 *e = opaque;
    uint32_t aligned = (uint32_t)off & ~3u;
    uint64_t v = reg_read(e, aligned);
    if (size == 8 && aligned + 4 < BAR0_SIZE)
        return v | (uint64_t)reg_read(e, aligned + 4) << 32;
    v >>= 8 * (off & 3);
    return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void bar0_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_e1000 *e = opaque;
    uint32_t aligned = (uint32_t)off & ~3u;
    if (size == 8) {
        reg_write(e, aligned, (uint32_t)val);
        if (aligned + 4 < BAR0_SIZE)
            reg_write(e, aligned + 4, (uint32_t)(val >> 32));
        return;
    }
    if (size < 4) {                     /* merge into the register (no read side effects) */
        unsigned sh = 8 * (off & 3);
        uint32_t mask = ((1u << (8 * size)) - 1) << sh;
        val = (*R(e, aligned) & ~mask) | (((uint32_t)val << sh) & mask);
    }
    reg_write(e, aligned, (uint32_t)val);
}

static const struct sx_dm_io_ops bar0_ops = { .read = bar0_read, .write = bar0_write };

/* BAR1: IOADDR (0) selects a register, IODATA (4) reads or writes it. */
static uint64_t bar1_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_e1000 *e = opaque;
    if (off == 0 && size == 4)
        return e->ioaddr;
    if (off == 4 && size == 4)
        return reg_read(e, e->ioaddr & (BAR0_SIZE - 4));
    return UINT64_MAX;
}

static void bar1_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_e1000 *e = opaque;
    if (off == 0 && size == 4)
        e->ioaddr = (uint32_t)val & (BAR0_SIZE - 4);
    else if (off == 4 && size == 4)
        reg_write(e, e->ioaddr, (uint32_t)val);
}

static const struct sx_dm_io_ops bar1_ops = { .read = bar1_read, .write = bar1_write };

/* ---------------- lifecycle ---------------- */

static void e1000_unplug(void *opaque)
{
    struct sx_e1000 *e = opaque;
    e->unplugged = true;
    if (e->watched && !e->paused)
        sx_dm_unwatch_fd(e->dm, e->world_fd);
    e->watched = false;
}

static void e1000_destroy(void *opaque)
{
    struct sx_e1000 *e = opaque;
    if (!e)
        return;
    if (e->watched && !e->paused)
        sx_dm_unwatch_fd(e->dm, e->world_fd);
    sx_tap_close(e->tap);
    free(e->regs);
    free(e->tx_buf);
    free(e->rx_buf);
    free(e);
}

static const struct sx_dm_dev_ops e1000_dev_ops = {
    .name = "e1000", .unplug_mask = SX_DM_UNPLUG_NICS, .unplug = e1000_unplug,
    .destroy = e1000_destroy,
};

int sx_e1000_add(struct sx_dm *dm, const struct sx_e1000_cfg *cfg, struct sx_e1000 **out)
{
    struct sx_e1000 *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->dm = dm;
    e->world_fd = -1;
    e->regs = calloc(1, BAR0_SIZE);
    e->tx_buf = malloc(SX_TAP_VNET_HDR_LEN + SX_E1000_MAX_FRAME);
    e->rx_buf = malloc(SX_TAP_VNET_HDR_LEN + SX_E1000_MAX_FRAME + 64);
    if (!e->regs || !e->tx_buf || !e->rx_buf) {
        e1000_destroy(e);
        return -ENOMEM;
    }
    domid_t domid = sx_dm_domid(dm);
    if (cfg->has_mac) {
        memcpy(e->mac, cfg->mac, 6);
    } else {
        const uint8_t m[6] = { 0x00, 0x16, 0x3e, (uint8_t)(0x40 | (cfg->devid & 0x3f)),
                               (uint8_t)(domid >> 8), (uint8_t)domid };
        memcpy(e->mac, m, 6);
    }
    int rc;
    if (cfg->use_world_fd) {
        e->world_fd = cfg->world_fd;
    } else {
        if (cfg->tap_name[0])
            snprintf(e->ifname, sizeof(e->ifname), "%s", cfg->tap_name);
        else
            snprintf(e->ifname, sizeof(e->ifname), "hvm%u.%u", domid, cfg->devid);
        const char *br = cfg->bridge[0] ? cfg->bridge : "xenbr0";
        /* The world side's own MAC: the guest's with the Xen vif convention fe:ff:ff:ff:ff:ff
         * would clash on some bridges; keep the kernel's random one. */
        struct sx_tap_config tc = { .name = e->ifname, .mtu = cfg->mtu, .offload = 0,
                                    .bridge = strcmp(br, "-") ? br : NULL, .up = true };
        rc = sx_tap_open(&tc, &e->tap);
        if (rc < 0) {
            sx_err("dom%u: TAP %s on %s: %s", domid, e->ifname, br, strerror(-rc));
            e1000_destroy(e);
            return rc;
        }
        e->world_fd = sx_tap_fd(e->tap, 0);
    }
    eeprom_init(e);
    rc = sx_dm_dev_add(dm, &e1000_dev_ops, e, &e->dev);
    if (rc < 0) {
        e1000_destroy(e);
        return rc;
    }
    /* From here on sx_dm_dev_remove frees e. */
    struct sx_pci_info info = {
        .devfn = cfg->devfn, .vendor = 0x8086, .device = 0x100e, .subsys_vendor = 0x8086,
        .subsys_id = 0x100e, .class_code = 0x020000, .revision = 3, .irq_pin = 1,
    };
    rc = sx_pci_add(e->dev, &info, &e->pci);
    if (rc == 0)
        rc = sx_pci_bar(e->pci, 0, BAR0_SIZE, SX_PCI_BAR_MEM32, &bar0_ops, e);
    if (rc == 0)
        rc = sx_pci_bar(e->pci, 1, BAR1_SIZE, SX_PCI_BAR_IO, &bar1_ops, e);
    if (rc == 0 && !cfg->no_watch) {
        rc = sx_dm_watch_fd(dm, e->world_fd, EPOLLIN, world_ready, e);
        e->watched = rc == 0;
    }
    if (rc < 0) {
        sx_dm_dev_remove(e->dev);
        return rc;
    }
    dev_reset(e);
    e->st.resets = 0;
    sx_info("dom%u: e1000 %02x:%02x:%02x:%02x:%02x:%02x at 00:%02x.%u, world %s", domid,
            e->mac[0], e->mac[1], e->mac[2], e->mac[3], e->mac[4], e->mac[5],
            sx_pci_devfn(e->pci) >> 3, sx_pci_devfn(e->pci) & 7,
            e->ifname[0] ? e->ifname : "fd");
    if (out)
        *out = e;
    return 0;
}

const struct sx_e1000_stats *sx_e1000_stats(const struct sx_e1000 *e) { return &e->st; }
struct sx_pci *sx_e1000_pci(struct sx_e1000 *e) { return e->pci; }
const char *sx_e1000_ifname(const struct sx_e1000 *e) { return e->ifname; }

/* ---------------- vif spec ---------------- */

static int parse_mac(const char *s, size_t len, uint8_t mac[6])
{
    unsigned b[6];
    char tmp[32];
    if (len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    int used = 0;
    if (sscanf(tmp, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
               &used) != 6 || used != (int)len)
        return -EINVAL;
    for (unsigned i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    return (mac[0] & 1) ? -EINVAL : 0;     /* a multicast address is no NIC address */
}

static int copy_name(char *dst, size_t dstlen, const char *s, size_t len)
{
    if (len == 0 || len >= dstlen)
        return -EINVAL;
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}

int sx_e1000_parse_vif(const char *spec, unsigned devid, struct sx_e1000_cfg *cfg,
                       bool *is_e1000)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->devfn = -1;
    cfg->devid = devid;
    cfg->world_fd = -1;
    bool e1000 = false;
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
            const char *v = eq + 1;
            int rc = 0;
            if (klen == 3 && !strncmp(p, "mac", 3)) {
                rc = parse_mac(v, vlen, cfg->mac);
                cfg->has_mac = rc == 0;
            } else if (klen == 6 && !strncmp(p, "bridge", 6)) {
                rc = copy_name(cfg->bridge, sizeof(cfg->bridge), v, vlen);
            } else if (klen == 7 && !strncmp(p, "vifname", 7)) {
                rc = copy_name(cfg->tap_name, sizeof(cfg->tap_name), v, vlen);
            } else if (klen == 5 && !strncmp(p, "model", 5)) {
                e1000 = (vlen == 5 && !strncmp(v, "e1000", 5)) ||
                        (vlen == 8 && !strncasecmp(v, "82540em", 8));
            } else if (klen == 3 && !strncmp(p, "mtu", 3)) {
                char tmp[16];
                if (copy_name(tmp, sizeof(tmp), v, vlen) < 0)
                    return -EINVAL;
                char *endp;
                unsigned long m = strtoul(tmp, &endp, 10);
                if (*endp || m < 68 || m > 65535)
                    return -EINVAL;
                cfg->mtu = (unsigned)m;
            }
            if (rc < 0)
                return rc;
        }
        p += len;
        if (end)
            p = end + 1;
        else
            break;
    }
    if (is_e1000)
        *is_e1000 = e1000;
    return 0;
}

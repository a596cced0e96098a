/*
 * The emulated e1000 driven straight through the dispatcher (sx_dm_read/write, PCI config),
 * with its descriptor rings and buffers in a real sim HVM domain's memory (an in-process core;
 * the ioreq server provides DMA, the guest side maps the same memory) and a socketpair as its
 * world side. Covers: PCI identity and BAR sizing, the EEPROM through EERD and Microwire with
 * its checksum, the MAC in RAL/RAH, PHY over MDIC, IOADDR/IODATA, a TDT kick transmitting a
 * legacy frame, checksum offload and TSO (one GSO frame with fixed headers), rx into posted
 * descriptors with filtering and backpressure, interrupt causes (TXDW, RXT0, LSC), ICR
 * read-to-clear and IMS/IMC masking on the INTx line, statistics clear-on-read, and hostile
 * rings (tail beyond the ring, descriptors and buffers outside guest memory, no bus master,
 * a ring of never-ending frames) and a world side that goes away.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device-model/dm.h"
#include "device-model/e1000/e1000.h"
#include "netdev/tap.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"

static struct simenv env;
static struct sx_plat *plat0, *platg;
static domid_t hvm;
static struct sx_ioreq_guest *g;
static uint8_t *gmem;
static uint64_t gmem_size;

static struct sx_dm *dm;
static struct sx_ioreq *srv;
static struct sx_e1000 *nic;
static int world[2] = { -1, -1 };     /* [0] the device's, [1] the test's */

#define DEVFN (3 << 3)
#define BAR0 0xf0000000ull
#define IOBAR 0xc100
static const uint8_t MAC[6] = { 0x00, 0x16, 0x3e, 0x12, 0x34, 0x56 };

static uint32_t rd(uint32_t reg) { return (uint32_t)sx_dm_read(dm, IOREQ_TYPE_COPY, BAR0 + reg, 4); }
static void wr(uint32_t reg, uint32_t v) { sx_dm_write(dm, IOREQ_TYPE_COPY, BAR0 + reg, v, 4); }
static uint32_t cfg_rd(unsigned reg, unsigned size) { return sx_dm_pci_cfg_read(dm, 0, DEVFN, (uint16_t)reg, size); }
static void cfg_wr(unsigned reg, uint32_t v, unsigned size) { sx_dm_pci_cfg_write(dm, 0, DEVFN, (uint16_t)reg, v, size); }
static bool intx(void) { return cfg_rd(0x06, 2) & 0x08; }   /* STATUS.INTERRUPT */

/* Guest memory for rings and buffers. */
static uint64_t galloc(uint32_t pages, uint8_t **va)
{
    uint64_t gpa;
    void *p;
    CU_ASSERT_FATAL(sx_ioreq_guest_mem_alloc(g, pages, &gpa, &p) == 0);
    memset(p, 0, (size_t)pages * 4096);
    *va = p;
    return gpa;
}

static void nic_open(void)
{
    CU_ASSERT_FATAL(sx_dm_open(&dm, hvm) == 0);
    CU_ASSERT_FATAL(sx_dm_pci_host_add(dm) == 0);
    struct sx_ioreq_opts o = { .domid = hvm, .handler = sx_dm_ioreq_handler, .opaque = dm };
    CU_ASSERT_FATAL(sx_ioreq_open(&srv, plat0, &o) == 0);
    CU_ASSERT_FATAL(sx_dm_set_ioreq(dm, srv) == 0);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, world) == 0);
    struct sx_e1000_cfg cfg = { .devfn = DEVFN, .has_mac = true, .use_world_fd = true,
                                .world_fd = world[0], .no_watch = true };
    memcpy(cfg.mac, MAC, 6);
    CU_ASSERT_FATAL(sx_e1000_add(dm, &cfg, &nic) == 0);
    cfg_wr(0x10, (uint32_t)BAR0, 4);
    cfg_wr(0x14, IOBAR, 4);
    cfg_wr(0x04, 0x7, 2);               /* I/O, memory, bus master */
    CU_ASSERT_FATAL(sx_pci_bar_addr(sx_e1000_pci(nic), 0) == BAR0);
}

static void nic_close(void)
{
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(srv);
    dm = NULL;
    srv = NULL;
    nic = NULL;
    close(world[0]);
    close(world[1]);
    world[0] = world[1] = -1;
}

/* ---- rings ---- */

struct txd { uint64_t addr; uint32_t lower, upper; };
struct rxd { uint64_t addr; uint16_t length, csum; uint8_t status, errors; uint16_t special; };

static struct txd *tx_ring;
static uint64_t tx_ring_gpa, tx_buf_gpa;
static uint8_t *tx_buf;

static void tx_setup(unsigned n)
{
    tx_ring_gpa = galloc(1, (uint8_t **)&tx_ring);
    tx_buf_gpa = galloc(32, &tx_buf);
    wr(0x3800, (uint32_t)tx_ring_gpa);
    wr(0x3804, (uint32_t)(tx_ring_gpa >> 32));
    wr(0x3808, n * 16);
    wr(0x3810, 0);
    wr(0x3818, 0);
    wr(0x0400, 0x2 | 0x8);              /* TCTL.EN | PSP */
}

static struct rxd *rx_ring;
static uint64_t rx_ring_gpa, rx_buf_gpa;
static uint8_t *rx_buf;

static void rx_setup(unsigned n, uint32_t rctl)
{
    rx_ring_gpa = galloc(1, (uint8_t **)&rx_ring);
    rx_buf_gpa = galloc(n / 2 + 1, &rx_buf);
    for (unsigned i = 0; i < n; i++)
        rx_ring[i].addr = rx_buf_gpa + 2048ull * i;
    wr(0x2800, (uint32_t)rx_ring_gpa);
    wr(0x2804, 0);
    wr(0x2808, n * 16);
    wr(0x2810, 0);
    wr(0x2818, 0);
    wr(0x0100, rctl);
}

static ssize_t world_recv(uint8_t *buf, size_t len)
{
    return recv(world[1], buf, len, MSG_DONTWAIT);
}

static void world_send(const uint8_t *frame, size_t len)
{
    uint8_t b[SX_TAP_VNET_HDR_LEN + 2048] = { 0 };
    memcpy(b + SX_TAP_VNET_HDR_LEN, frame, len);
    CU_ASSERT_FATAL(send(world[1], b, SX_TAP_VNET_HDR_LEN + len, 0) == (ssize_t)(SX_TAP_VNET_HDR_LEN + len));
}

static void mk_frame(uint8_t *f, const uint8_t *dst, size_t len, uint8_t fill)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, MAC, 6);
    f[12] = 0x88;
    f[13] = 0xb5;                       /* local experimental ethertype */
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(fill + i);
}

/* ---------------- tests ---------------- */

static void test_pci_identity_and_bars(void)
{
    nic_open();
    CU_ASSERT_EQUAL(cfg_rd(0, 4), 0x100e8086);
    CU_ASSERT_EQUAL(cfg_rd(0x08, 4) >> 8, 0x020000);
    CU_ASSERT_EQUAL(cfg_rd(0x3d, 1), 1);
    cfg_wr(0x04, 0, 2);
    cfg_wr(0x10, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_rd(0x10, 4), 0xfffe0000);   /* 128 KiB, memory */
    cfg_wr(0x14, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_rd(0x14, 4), 0xffffffc1);   /* 64 ports, I/O */
    nic_close();
}

static uint16_t eerd(unsigned word)
{
    wr(0x14, (word << 8) | 1);
    uint32_t v = rd(0x14);
    CU_ASSERT(v & 0x10);                /* DONE */
    return (uint16_t)(v >> 16);
}

/* Microwire read as Linux's e1000_shift_out_ee_bits / e1000_shift_in_ee_bits do it. */
static uint16_t microwire(unsigned word)
{
    uint32_t eecd = 0x2;                /* CS */
    wr(0x10, eecd);
    uint32_t bits = (6u << 6) | word;   /* opcode 110, 6 address bits */
    for (int i = 8; i >= 0; i--) {
        eecd = (eecd & ~0x4u) | (((bits >> i) & 1) ? 0x4u : 0);
        wr(0x10, eecd);
        wr(0x10, eecd | 0x1);           /* SK rise */
        wr(0x10, eecd);                 /* SK fall */
    }
    eecd &= ~0x4u;
    uint16_t v = 0;
    for (int i = 0; i < 16; i++) {
        wr(0x10, eecd | 0x1);
        v = (uint16_t)(v << 1 | ((rd(0x10) & 0x8) ? 1 : 0));
        wr(0x10, eecd);
    }
    wr(0x10, 0);                        /* CS down */
    return v;
}

static void test_eeprom_mac_phy(void)
{
    nic_open();
    CU_ASSERT_EQUAL(eerd(0), 0x1600);
    CU_ASSERT_EQUAL(eerd(1), 0x123e);
    CU_ASSERT_EQUAL(eerd(2), 0x5634);
    uint16_t sum = 0;
    for (unsigned i = 0; i < 64; i++)
        sum = (uint16_t)(sum + eerd(i));
    CU_ASSERT_EQUAL(sum, 0xbaba);
    CU_ASSERT_EQUAL(microwire(1), 0x123e);
    CU_ASSERT_EQUAL(microwire(63), eerd(63));
    CU_ASSERT_EQUAL(microwire(11), 0x100e);         /* device id word */
    CU_ASSERT(rd(0x10) & 0x100);                    /* EECD.PRES */
    /* MAC in receive address 0, valid. */
    CU_ASSERT_EQUAL(rd(0x5400), 0x123e1600);
    CU_ASSERT_EQUAL(rd(0x5404), 0x80005634);
    /* STATUS: link up, full duplex; the same through IOADDR/IODATA. */
    uint32_t st = rd(0x8);
    CU_ASSERT_EQUAL(st & 3, 3);
    sx_dm_write(dm, IOREQ_TYPE_PIO, IOBAR, 0x8, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, IOBAR + 4, 4), st);
    /* PHY over MDIC: status has link, ids are an M88E1011's; wrong PHY address errors. */
    wr(0x20, (2u << 26) | (1u << 21) | (1u << 16));
    uint32_t m = rd(0x20);
    CU_ASSERT(m & (1u << 28));
    CU_ASSERT(m & 0x4);
    wr(0x20, (2u << 26) | (1u << 21) | (2u << 16));
    CU_ASSERT_EQUAL(rd(0x20) & 0xffff, 0x0141);
    wr(0x20, (2u << 26) | (5u << 21) | (1u << 16));
    CU_ASSERT(rd(0x20) & (1u << 30));
    /* Reset (CTRL.RST) keeps the MAC and clears the ring registers. */
    wr(0x3808, 1024);
    wr(0x0, 1u << 26);
    CU_ASSERT_EQUAL(rd(0x3808), 0);
    CU_ASSERT_EQUAL(rd(0x5400), 0x123e1600);
    nic_close();
}

static void test_tdt_kick_transmits_and_txdw(void)
{
    nic_open();
    tx_setup(8);
    uint8_t frame[100];
    static const uint8_t peer[6] = { 0x02, 0, 0, 0, 0, 9 };
    mk_frame(frame, peer, sizeof(frame), 7);
    memcpy(tx_buf, frame, 40);
    memcpy(tx_buf + 4096, frame + 40, 60);          /* two descriptors, EOP on the second */
    tx_ring[0] = (struct txd){ tx_buf_gpa, 40, 0 };
    tx_ring[1] = (struct txd){ tx_buf_gpa + 4096, 60 | (0x1u | 0x2u | 0x8u) << 24, 0 };
    wr(0xd0, 0x1);                                  /* IMS.TXDW */
    CU_ASSERT_FALSE(intx());
    wr(0x3818, 2);
    uint8_t got[SX_TAP_VNET_HDR_LEN + 200];
    CU_ASSERT_EQUAL(world_recv(got, sizeof(got)), SX_TAP_VNET_HDR_LEN + 100);
    CU_ASSERT_EQUAL(memcmp(got + SX_TAP_VNET_HDR_LEN, frame, 100), 0);
    CU_ASSERT_EQUAL(got[0], 0);                     /* no offload flags */
    CU_ASSERT_EQUAL(world_recv(got, sizeof(got)), -1);
    CU_ASSERT_EQUAL(rd(0x3810), 2);                 /* TDH caught up */
    CU_ASSERT_EQUAL(tx_ring[1].upper & 1, 1);       /* DD written back (RS) */
    CU_ASSERT_EQUAL(tx_ring[0].upper & 1, 0);       /* no RS, no write-back */
    CU_ASSERT_TRUE(intx());
    uint32_t icr = rd(0xc0);
    CU_ASSERT(icr & 0x1);                           /* TXDW */
    CU_ASSERT(icr & 0x80000000u);                   /* INT_ASSERTED */
    CU_ASSERT_FALSE(intx());                        /* read-to-clear lowered the line */
    CU_ASSERT_EQUAL(rd(0xc0), 0);
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->tx_frames, 1);
    /* Statistics: good packets transmitted, cleared on read. */
    CU_ASSERT_EQUAL(rd(0x4080), 1);
    CU_ASSERT_EQUAL(rd(0x4080), 0);
    /* Legacy checksum insertion (CMD.IC): CSS 14, CSO 16. */
    memset(tx_buf, 0, 64);
    mk_frame(tx_buf, peer, 64, 1);
    tx_buf[16] = tx_buf[17] = 0;
    tx_ring[2] = (struct txd){ tx_buf_gpa, 64 | 16u << 16 | (0x1u | 0x4u | 0x8u) << 24, 14u << 8 };
    wr(0x3818, 3);
    CU_ASSERT_EQUAL(world_recv(got, sizeof(got)), SX_TAP_VNET_HDR_LEN + 64);
    uint32_t s = 0;
    for (unsigned i = 14; i < 64; i += 2)
        s += (uint32_t)got[SX_TAP_VNET_HDR_LEN + i] << 8 | got[SX_TAP_VNET_HDR_LEN + i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    CU_ASSERT_EQUAL(s, 0xffff);                     /* the inserted checksum verifies */
    nic_close();
}

/* A TCP/IPv4 frame: Ethernet 14 + IP 20 + TCP 20, payload of `pay` bytes. */
static size_t mk_tcp(uint8_t *f, size_t pay)
{
    static const uint8_t peer[6] = { 0x02, 0, 0, 0, 0, 9 };
    memset(f, 0, 54);
    memcpy(f, peer, 6);
    memcpy(f + 6, MAC, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, (uint8_t[]){ 192, 0, 2, 3 }, 4);
    memcpy(ip + 16, (uint8_t[]){ 192, 0, 2, 1 }, 4);
    uint8_t *tcp = ip + 20;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    for (size_t i = 0; i < pay; i++)
        f[54 + i] = (uint8_t)i;
    return 54 + pay;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void test_tso_and_checksum_offload(void)
{
    nic_open();
    tx_setup(16);
    size_t len = mk_tcp(tx_buf, 4000);
    /* Context: IPCSS 14, IPCSO 24, TUCSS 34, TUCSO 50, TUCMD IP|TCP|TSE, MSS 1448, HDRLEN 54. */
    uint64_t ctx_addr = 14 | 24u << 8 | (uint64_t)(14 + 20 - 1) << 16 |
                        (uint64_t)(34 | 50u << 8) << 32;
    tx_ring[0] = (struct txd){ ctx_addr, (uint32_t)(len - 54) | (1u << 29) | (0x07u << 24), 54u << 8 | 1448u << 16 };
    /* Data: DEXT, DTYP=D, TSE, EOP, RS, IFCS; POPTS IXSM|TXSM. */
    tx_ring[1] = (struct txd){ tx_buf_gpa, (uint32_t)len | (1u << 20) | (1u << 29) |
                               (0x01u | 0x02u | 0x04u | 0x08u) << 24, 0x3u << 8 };
    wr(0x3818, 2);
    uint8_t got[SX_TAP_VNET_HDR_LEN + 8192];
    CU_ASSERT_EQUAL_FATAL(world_recv(got, sizeof(got)), (ssize_t)(SX_TAP_VNET_HDR_LEN + len));
    struct virtio_net_hdr_v1 vh;
    memcpy(&vh, got, sizeof(vh));
    CU_ASSERT_EQUAL(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    CU_ASSERT_EQUAL(vh.gso_size, 1448);
    CU_ASSERT_EQUAL(vh.hdr_len, 54);
    CU_ASSERT_EQUAL(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(vh.csum_start, 34);
    CU_ASSERT_EQUAL(vh.csum_offset, 16);
    const uint8_t *f = got + SX_TAP_VNET_HDR_LEN;
    CU_ASSERT_EQUAL(be16(f + 16), len - 14);        /* IP total length fixed */
    uint32_t s = 0;
    for (unsigned i = 14; i < 34; i += 2)
        s += be16(f + i);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    CU_ASSERT_EQUAL(s, 0xffff);                     /* IP header checksum valid */
    /* TCP field: folded pseudo-header sum with the TCP length. */
    uint32_t ps = 0xc000 + 0x0203 + 0xc000 + 0x0201 + 6 + (uint32_t)(len - 34);
    while (ps >> 16)
        ps = (ps & 0xffff) + (ps >> 16);
    CU_ASSERT_EQUAL(be16(f + 50), ps);
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->tx_tso, 1);
    /* Checksum only (no TSE): NEEDS_CSUM, no GSO. */
    len = mk_tcp(tx_buf, 100);
    tx_ring[2] = (struct txd){ ctx_addr, (1u << 29) | (0x03u << 24), 0 };
    tx_ring[3] = (struct txd){ tx_buf_gpa, (uint32_t)len | (1u << 20) | (1u << 29) |
                               (0x01u | 0x08u) << 24, 0x2u << 8 };
    wr(0x3818, 4);
    CU_ASSERT_EQUAL_FATAL(world_recv(got, sizeof(got)), (ssize_t)(SX_TAP_VNET_HDR_LEN + len));
    memcpy(&vh, got, sizeof(vh));
    CU_ASSERT_EQUAL(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    CU_ASSERT_EQUAL(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(vh.csum_start, 34);
    /* A TSO context that does not fit the frame: dropped and counted, ring goes on. */
    uint64_t bad = ctx_addr;
    tx_ring[4] = (struct txd){ bad, (1u << 29) | (0x07u << 24), 200u << 8 | 1448u << 16 };
    tx_ring[5] = (struct txd){ tx_buf_gpa, 60 | (1u << 20) | (1u << 29) | (0x01u | 0x04u | 0x08u) << 24, 0x3u << 8 };
    wr(0x3818, 6);
    CU_ASSERT_EQUAL(world_recv(got, sizeof(got)), -1);
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->tx_bad_ctx, 1);
    CU_ASSERT_EQUAL(rd(0x3810), 6);
    nic_close();
}

static void test_rx_into_posted_descriptors(void)
{
    nic_open();
    rx_setup(8, 0x2 | 0x8000 | (1u << 26));          /* EN | BAM | SECRC, 2 KiB buffers */
    wr(0xd0, 0x80);                                 /* IMS.RXT0 */
    uint8_t f[300];
    mk_frame(f, MAC, sizeof(f), 3);
    world_send(f, sizeof(f));
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 0);          /* no buffers posted: held */
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->rx_paused, 1);
    CU_ASSERT_FALSE(intx());
    wr(0x2818, 7);                                  /* post 7: the held frame goes in */
    CU_ASSERT_EQUAL(rx_ring[0].status & 3, 3);      /* DD | EOP */
    CU_ASSERT_EQUAL(rx_ring[0].length, 300);
    CU_ASSERT_EQUAL(memcmp(rx_buf, f, 300), 0);
    CU_ASSERT_EQUAL(rd(0x2810), 1);
    CU_ASSERT_TRUE(intx());
    CU_ASSERT(rd(0xc0) & 0x80);                     /* RXT0 */
    CU_ASSERT_FALSE(intx());
    /* Filtering: another unicast address is dropped; broadcast passes (BAM). */
    static const uint8_t other[6] = { 0x02, 1, 2, 3, 4, 5 };
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    mk_frame(f, other, 100, 1);
    world_send(f, 100);
    mk_frame(f, bcast, 100, 2);
    world_send(f, 100);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 1);
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->rx_filtered, 1);
    CU_ASSERT_EQUAL(rx_ring[1].status & 3, 3);
    CU_ASSERT_EQUAL(memcmp(rx_buf + 2048, f, 100), 0);
    /* Multicast through the MTA (MO=0: bits 47:36 of the address). */
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
    unsigned h = ((unsigned)mcast[5] << 8 | mcast[4]) >> 4 & 0xfff;
    mk_frame(f, mcast, 80, 3);
    world_send(f, 80);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 0);
    wr(0x5200 + (h >> 5) * 4, 1u << (h & 31));
    world_send(f, 80);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 1);
    /* Promiscuous unicast (UPE), and a runt padded to 60 bytes; CRC counted without SECRC. */
    wr(0x0100, 0x2 | 0x8);
    mk_frame(f, other, 20, 4);
    world_send(f, 20);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 1);
    CU_ASSERT_EQUAL(rx_ring[3].length, 64);
    CU_ASSERT_EQUAL(rd(0x4074), 4);                 /* GPRC, then cleared */
    CU_ASSERT_EQUAL(rd(0x4074), 0);
    /* A frame needing more buffers than posted waits; RCTL.EN off drops. */
    CU_ASSERT_EQUAL(rd(0x2810), 4);
    wr(0x0100, 0x8000 | 0x8);
    world_send(f, 20);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 0);
    CU_ASSERT_EQUAL(sx_e1000_stats(nic)->rx_disabled, 1);
    CU_ASSERT_EQUAL(rd(0x2810), 4);
    nic_close();
}

static void test_interrupt_masking_and_lsc(void)
{
    nic_open();
    wr(0xc8, 0x4);                                  /* ICS.LSC while masked */
    CU_ASSERT_FALSE(intx());
    CU_ASSERT_EQUAL(rd(0xc0), 0x4);                 /* cause visible, no INT_ASSERTED */
    wr(0xd0, 0x4 | 0x80);                           /* IMS: LSC, RXT0 */
    CU_ASSERT_EQUAL(rd(0xd0), 0x84);
    sx_e1000_set_link(nic, false);
    CU_ASSERT_TRUE(intx());
    CU_ASSERT_EQUAL(rd(0x8) & 2, 0);                /* STATUS.LU down */
    wr(0xd8, 0x4);                                  /* IMC.LSC: line drops, cause stays */
    CU_ASSERT_FALSE(intx());
    wr(0xd0, 0x4);
    CU_ASSERT_TRUE(intx());
    wr(0xc0, 0x4);                                  /* write-one-to-clear */
    CU_ASSERT_FALSE(intx());
    CU_ASSERT_EQUAL(rd(0xc0), 0);
    sx_e1000_set_link(nic, true);
    CU_ASSERT_TRUE(intx());
    CU_ASSERT_EQUAL(rd(0xc0), 0x80000004u);
    /* INTx disable in COMMAND hides the line. */
    wr(0xc8, 0x80);
    cfg_wr(0x04, 0x7 | 0x400, 2);
    CU_ASSERT_EQUAL(sx_dm_stats(dm)->irq_errors, 0);
    cfg_wr(0x04, 0x7, 2);
    CU_ASSERT_TRUE(intx());
    CU_ASSERT_EQUAL(rd(0xc0), 0x80000080u);
    nic_close();
}

static void test_hostile_rings(void)
{
    nic_open();
    tx_setup(8);
    const struct sx_e1000_stats *st = sx_e1000_stats(nic);
    /* Tail beyond the ring: nothing processed, counted. */
    wr(0x3818, 100);
    CU_ASSERT_EQUAL(st->ring_errors, 1);
    CU_ASSERT_EQUAL(rd(0x3810), 0);
    /* Ring base outside guest memory. */
    wr(0x3800, (uint32_t)(gmem_size + 4096));
    wr(0x3818, 1);
    CU_ASSERT_EQUAL(st->desc_dma_errors, 1);
    CU_ASSERT_EQUAL(rd(0x3810), 0);
    wr(0x3800, 0);
    wr(0x3804, 0xffffffff);
    wr(0x3818, 2);
    CU_ASSERT_EQUAL(st->desc_dma_errors, 2);
    /* Back in memory: a buffer outside memory drops that frame, DD still written. */
    wr(0x3804, 0);
    wr(0x3800, (uint32_t)tx_ring_gpa);
    wr(0x3818, 0);
    wr(0x3810, 0);
    tx_ring[0] = (struct txd){ gmem_size - 16, 64 | (0x1u | 0x8u) << 24, 0 };
    tx_ring[1] = (struct txd){ UINT64_MAX - 8, 64 | (0x1u | 0x8u) << 24, 0 };
    wr(0x3818, 2);
    CU_ASSERT_EQUAL(st->buf_dma_errors, 2);
    CU_ASSERT_EQUAL(st->tx_frames, 0);
    CU_ASSERT_EQUAL(tx_ring[1].upper & 1, 1);
    CU_ASSERT_EQUAL(rd(0x3810), 2);
    /* A ring of frames that never end, kicked over and over: each kick stops at one ring's
     * worth; the frame grows past SX_E1000_MAX_FRAME and is dropped at its EOP. */
    for (unsigned i = 0; i < 8; i++)
        tx_ring[i] = (struct txd){ tx_buf_gpa, 16384, 0 };
    for (unsigned k = 0; k < 8; k++)
        wr(0x3818, (rd(0x3810) + 7) % 8);
    tx_ring[(rd(0x3810) + 0) % 8] = (struct txd){ tx_buf_gpa, 64 | (0x1u | 0x8u) << 24, 0 };
    wr(0x3818, (rd(0x3810) + 1) % 8);
    CU_ASSERT_EQUAL(st->tx_oversize, 1);
    CU_ASSERT_EQUAL(st->tx_frames, 0);
    uint8_t got[64];
    CU_ASSERT_EQUAL(world_recv(got, sizeof(got)), -1);
    /* The next frame is fine again. */
    unsigned h = rd(0x3810);
    mk_frame(tx_buf, MAC, 64, 0);
    tx_ring[h] = (struct txd){ tx_buf_gpa, 64 | (0x1u | 0x8u) << 24, 0 };
    wr(0x3818, (h + 1) % 8);
    CU_ASSERT_EQUAL(st->tx_frames, 1);
    /* Without bus mastering nothing is read; with a zero-length ring nothing either. */
    cfg_wr(0x04, 0x3, 2);
    h = rd(0x3810);
    tx_ring[h] = tx_ring[(h + 7) % 8];
    wr(0x3818, (h + 1) % 8);
    CU_ASSERT_EQUAL(st->tx_frames, 1);
    CU_ASSERT(sx_dm_stats(dm)->dma_no_master >= 1);
    cfg_wr(0x04, 0x7, 2);
    wr(0x3808, 0);
    wr(0x3818, 5);
    CU_ASSERT(st->ring_errors >= 2);
    /* rx: RDT beyond the ring holds the frame (no crash, no spin); a sane RDT delivers it. */
    rx_setup(8, 0x2 | 0x8 | (1u << 26));
    wr(0x2818, 50);
    uint8_t f[100];
    mk_frame(f, MAC, 100, 5);
    world_send(f, 100);
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 0);
    CU_ASSERT(st->ring_errors >= 3);
    /* Descriptor buffers outside memory: frame lost with RXE, the ring still moves. */
    rx_ring[0].addr = gmem_size;
    wr(0x2818, 3);
    CU_ASSERT_EQUAL(rx_ring[0].status & 1, 1);
    CU_ASSERT_EQUAL(rx_ring[0].errors, 0x80);
    CU_ASSERT_EQUAL(rd(0x2810), 1);
    CU_ASSERT(st->buf_dma_errors >= 3);
    /* The world side goes away: receive stops, counted, nothing spins. */
    close(world[1]);
    world[1] = -1;
    CU_ASSERT_EQUAL(sx_e1000_poll(nic), 0);
    CU_ASSERT_EQUAL(st->world_errors, 1);
    nic_close();
}

static void test_parse_vif(void)
{
    struct sx_e1000_cfg c;
    bool is;
    CU_ASSERT_EQUAL(sx_e1000_parse_vif("mac=00:16:3e:aa:bb:cc, bridge=xenbr0,model=e1000", 1, &c, &is), 0);
    CU_ASSERT_TRUE(is);
    CU_ASSERT_TRUE(c.has_mac);
    CU_ASSERT_EQUAL(c.mac[5], 0xcc);
    CU_ASSERT_STRING_EQUAL(c.bridge, "xenbr0");
    CU_ASSERT_EQUAL(c.devid, 1);
    CU_ASSERT_EQUAL(c.devfn, -1);
    CU_ASSERT_EQUAL(sx_e1000_parse_vif("bridge=br1,vifname=e.1", 0, &c, &is), 0);
    CU_ASSERT_FALSE(is);
    CU_ASSERT_FALSE(c.has_mac);
    CU_ASSERT_STRING_EQUAL(c.tap_name, "e.1");
    CU_ASSERT_EQUAL(sx_e1000_parse_vif("mac=01:00:00:00:00:01", 0, &c, &is), -EINVAL);
    CU_ASSERT_EQUAL(sx_e1000_parse_vif("mac=00:16:3e:aa:bb", 0, &c, &is), -EINVAL);
    CU_ASSERT_EQUAL(sx_e1000_parse_vif("bridge=averyveryverylongbridgename", 0, &c, &is), -EINVAL);
}

static int suite_init(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    plat0 = simenv_plat(&env, 0);
    if (!plat0)
        return 1;
    int d = sxc_domain_create(plat0->conn, "hvm-e1000", SXD_TYPE_HVM, 16, 1, false);
    if (d <= 0)
        return 1;
    hvm = (domid_t)d;
    platg = simenv_plat(&env, hvm);
    if (!platg || sx_ioreq_guest_open(&g, platg, 0) < 0)
        return 1;
    gmem = sx_ioreq_guest_mem(g, &gmem_size);
    return gmem ? 0 : 1;
}

static int suite_clean(void)
{
    sx_ioreq_guest_close(g);
    sx_plat_close(platg);
    sx_plat_close(plat0);
    simenv_stop(&env);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_pci_identity_and_bars),
    SX_TEST(test_eeprom_mac_phy),
    SX_TEST(test_tdt_kick_transmits_and_txdw),
    SX_TEST(test_tso_and_checksum_offload),
    SX_TEST(test_rx_into_posted_descriptors),
    SX_TEST(test_interrupt_masking_and_lsc),
    SX_TEST(test_hostile_rings),
    SX_TEST(test_parse_vif),
};

SX_TEST_MAIN("e1000", cases, suite_init, suite_clean)

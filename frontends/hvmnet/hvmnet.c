/*
 * splitxen-hvmnet: the sim HVM guest's e1000 driver. Acting as the HVM domain's vCPU 0 it
 * finds the emulated 82540EM on PCI bus 0 through 0xCF8/0xCFC, sizes and places BAR0, enables
 * memory decoding and bus mastering, resets the NIC, reads the MAC from the EEPROM (EERD, with
 * the 0xBABA checksum), sets up rx and tx rings with their buffers in its own guest memory and
 * moves frames between a TAP "eth0" in a network namespace and the NIC, with MMIO accesses only.
 *
 *   splitxen-hvmnet --domid N --netns NAME --ip 192.0.2.3/24 [--mmio 0xf0000000] [--stats]
 *
 * Every register access is one ioreq round trip, so the driver batches: it learns about
 * completed rx descriptors from their DD bits in memory (after the interrupt, whose ICR read
 * lowers the line), writes RDT once per rx batch and TDT once per tx batch. eth0 takes partial
 * checksums and TSO from the kernel (vnet header) and hands them to the NIC as context + data
 * descriptors, as Linux's e1000 driver does.
 *
 * Exit: 0 after SIGTERM/SIGINT, 1 on failure (no NIC, domain gone), 2 usage.
 */
#define SX_LOG_MODULE "hvmnet"
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "netdev/nl.h"
#include "netdev/tap.h"
#include "barrier.h"
#include "ioreq/ioreq.h"
#include "platform/platform.h"
#include "version.h"

/* registers */
#define CTRL 0x0000
#define STATUS 0x0008
#define EERD 0x0014
#define ICR 0x00c0
#define IMS 0x00d0
#define IMC 0x00d8
#define RCTL 0x0100
#define TCTL 0x0400
#define TIPG 0x0410
#define RDBAL 0x2800
#define RDBAH 0x2804
#define RDLEN 0x2808
#define RDH 0x2810
#define RDT 0x2818
#define TDBAL 0x3800
#define TDBAH 0x3804
#define TDLEN 0x3808
#define TDH 0x3810
#define TDT 0x3818

#define ICR_LSC 0x04u
#define ICR_RXO 0x40u
#define ICR_RXT0 0x80u

#define NRX 2048u
#define NTX 512u
#define RXBUF 2048u
#define TXBUF 4096u
#define TX_BATCH 64u
#define RX_BATCH 256u
#define FRAME_MAX (SX_TAP_VNET_HDR_LEN + 65536u)

struct txd { uint64_t addr; uint32_t lower, upper; };
struct rxd { uint64_t addr; uint16_t length, csum; uint8_t status, errors; uint16_t special; };

struct drv {
    struct sx_ioreq_guest *g;
    uint64_t bar0;
    unsigned gsi;
    uint8_t mac[6];
    volatile struct rxd *rx;
    volatile struct txd *tx;
    uint64_t rx_gpa, tx_gpa, rxbuf_gpa, txbuf_gpa;
    uint8_t *rxbuf, *txbuf;
    unsigned rx_next;               /* next rx descriptor to look at */
    unsigned tx_tail, tx_clean;     /* next free tx descriptor, oldest in flight */
    uint8_t *frame;                 /* one frame from eth0 / assembled from rx descriptors */
    size_t rx_acc;
    int tap_fd;
    bool failed;
    struct { uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes, tx_tso, tx_csum, mmio, irqs,
               rx_errors, tx_drops, tap_errors; } st;
};

static uint32_t rd(struct drv *d, uint32_t reg)
{
    uint64_t v = UINT32_MAX;
    d->st.mmio++;
    if (sx_ioreq_mmio_read(d->g, d->bar0 + reg, 4, &v) < 0)
        d->failed = true;
    return (uint32_t)v;
}

static void wr(struct drv *d, uint32_t reg, uint32_t v)
{
    d->st.mmio++;
    if (sx_ioreq_mmio_write(d->g, d->bar0 + reg, 4, v) < 0)
        d->failed = true;
}

/* Find the e1000 on bus 0, place BAR0 at `mmio`, enable memory + bus master. */
static int probe(struct drv *d, uint64_t mmio)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id;
        if (sx_ioreq_pci_cfg_read(d->g, 0, (uint8_t)dev, 0, 0, 4, &id) < 0)
            return -ETIMEDOUT;
        if (id != 0x100e8086)
            continue;
        uint32_t bar;
        sx_ioreq_pci_cfg_write(d->g, 0, (uint8_t)dev, 0, 0x10, 4, 0xffffffff);
        sx_ioreq_pci_cfg_read(d->g, 0, (uint8_t)dev, 0, 0x10, 4, &bar);
        if (bar & 1)
            return -ENODEV;
        uint64_t size = (uint64_t)(~(bar & ~0xfu)) + 1;
        if (mmio & (size - 1))
            return -EINVAL;
        sx_ioreq_pci_cfg_write(d->g, 0, (uint8_t)dev, 0, 0x10, 4, (uint32_t)mmio);
        sx_ioreq_pci_cfg_write(d->g, 0, (uint8_t)dev, 0, 0x04, 2, 0x6);   /* MEM | MASTER */
        d->bar0 = mmio;
        d->gsi = sx_ioreq_pci_intx_gsi(dev, 0);
        sx_info("e1000 at 00:%02x.0, BAR0 %#" PRIx64 " (%" PRIu64 " KiB), gsi %u", dev, mmio,
                size >> 10, d->gsi);
        return 0;
    }
    return -ENODEV;
}

static int nic_init(struct drv *d)
{
    wr(d, IMC, 0xffffffff);
    wr(d, CTRL, 1u << 26);                      /* RST */
    wr(d, IMC, 0xffffffff);
    (void)rd(d, ICR);
    uint16_t sum = 0;
    for (unsigned i = 0; i < 64; i++) {
        wr(d, EERD, i << 8 | 1);
        uint32_t v = rd(d, EERD);
        if (!(v & 0x10))
            return -EIO;
        uint16_t w = (uint16_t)(v >> 16);
        sum = (uint16_t)(sum + w);
        if (i < 3) {
            d->mac[2 * i] = (uint8_t)w;
            d->mac[2 * i + 1] = (uint8_t)(w >> 8);
        }
    }
    if (sum != 0xbaba) {
        sx_err("EEPROM checksum %#x, want 0xbaba", sum);
        return -EIO;
    }
    if (d->failed)
        return -EIO;
    /* Rings and buffers in our own memory. */
    void *va;
    int rc;
    if ((rc = sx_ioreq_guest_mem_alloc(d->g, NRX * 16 / 4096, &d->rx_gpa, &va)) < 0)
        return rc;
    d->rx = va;
    if ((rc = sx_ioreq_guest_mem_alloc(d->g, NTX * 16 / 4096, &d->tx_gpa, &va)) < 0)
        return rc;
    d->tx = va;
    if ((rc = sx_ioreq_guest_mem_alloc(d->g, NRX * RXBUF / 4096, &d->rxbuf_gpa, &va)) < 0)
        return rc;
    d->rxbuf = va;
    if ((rc = sx_ioreq_guest_mem_alloc(d->g, NTX * TXBUF / 4096, &d->txbuf_gpa, &va)) < 0)
        return rc;
    d->txbuf = va;
    memset((void *)d->rx, 0, NRX * 16);
    memset((void *)d->tx, 0, NTX * 16);
    for (unsigned i = 0; i < NRX; i++)
        d->rx[i].addr = d->rxbuf_gpa + (uint64_t)i * RXBUF;
    xen_wmb(); /* descriptors in memory before the device learns of the ring */
    wr(d, RDBAL, (uint32_t)d->rx_gpa);
    wr(d, RDBAH, (uint32_t)(d->rx_gpa >> 32));
    wr(d, RDLEN, NRX * 16);
    wr(d, RDH, 0);
    wr(d, RDT, NRX - 1);
    wr(d, TDBAL, (uint32_t)d->tx_gpa);
    wr(d, TDBAH, (uint32_t)(d->tx_gpa >> 32));
    wr(d, TDLEN, NTX * 16);
    wr(d, TDH, 0);
    wr(d, TDT, 0);
    wr(d, TIPG, 8 | 8 << 10 | 6 << 20);
    wr(d, TCTL, 0x2 | 0x8 | 0x0f << 4 | 0x40 << 12);        /* EN, PSP, CT, COLD */
    wr(d, RCTL, 0x2 | 0x8000 | 1u << 26);                   /* EN, BAM, SECRC, 2 KiB */
    wr(d, IMS, ICR_RXT0 | ICR_RXO | ICR_LSC);
    uint32_t st = rd(d, STATUS);
    sx_info("MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s", d->mac[0], d->mac[1], d->mac[2],
            d->mac[3], d->mac[4], d->mac[5], (st & 2) ? "up" : "down");
    return d->failed ? -EIO : 0;
}

/* ---- receive: descriptors the NIC completed -> eth0 ---- */

static unsigned rx_clean(struct drv *d)
{
    unsigned n = 0;
    while (n < RX_BATCH) {
        volatile struct rxd *r = &d->rx[d->rx_next];
        uint8_t status = r->status;
        if (!(status & 1))
            break;
        xen_rmb(); /* DD seen before the length and the buffer's bytes */
        unsigned len = r->length;
        if (r->errors || len > RXBUF || d->rx_acc + len > FRAME_MAX - SX_TAP_VNET_HDR_LEN) {
            d->st.rx_errors++;
            d->rx_acc = 0;
        } else {
            memcpy(d->frame + SX_TAP_VNET_HDR_LEN + d->rx_acc,
                   d->rxbuf + (size_t)d->rx_next * RXBUF, len);
            d->rx_acc += len;
            if (status & 2) {                   /* EOP */
                memset(d->frame, 0, SX_TAP_VNET_HDR_LEN);
                ssize_t w = write(d->tap_fd, d->frame, SX_TAP_VNET_HDR_LEN + d->rx_acc);
                if (w < 0)
                    d->st.tap_errors++;
                d->st.rx_frames++;
                d->st.rx_bytes += d->rx_acc;
                d->rx_acc = 0;
            }
        }
        r->status = 0;
        d->rx_next = (d->rx_next + 1) % NRX;
        n++;
    }
    if (n) {
        xen_wmb(); /* cleared descriptors before the device may reuse them */
        wr(d, RDT, (d->rx_next + NRX - 1) % NRX);
    }
    return n;
}

/* ---- transmit: eth0 -> descriptors ---- */

static unsigned tx_free(const struct drv *d)
{
    return (d->tx_clean + NTX - d->tx_tail - 1) % NTX;
}

/* Descriptors up to an EOP (the only ones with RS) are done once its DD is set. */
static void tx_reclaim(struct drv *d)
{
    unsigned i = d->tx_clean;
    while (i != d->tx_tail) {
        uint32_t lower = d->tx[i].lower;
        if (lower & (1u << 27)) {               /* RS */
            if (!(d->tx[i].upper & 1))
                return;
            d->tx_clean = (i + 1) % NTX;
        }
        i = (i + 1) % NTX;
    }
}

static void put_desc(struct drv *d, uint64_t addr, uint32_t lower, uint32_t upper)
{
    d->tx[d->tx_tail] = (struct txd){ addr, lower, upper };
    d->tx_tail = (d->tx_tail + 1) % NTX;
}

/* Queue one frame (vnet header + Ethernet) as descriptors. false: dropped. */
static bool tx_frame(struct drv *d, const uint8_t *buf, size_t n)
{
    struct virtio_net_hdr_v1 vh;
    memcpy(&vh, buf, sizeof(vh));
    const uint8_t *f = buf + SX_TAP_VNET_HDR_LEN;
    size_t len = n - SX_TAP_VNET_HDR_LEN;
    if (len < 14)
        return false;
    bool dext = false;
    uint32_t dcmd = 0, popts = 0;
    if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        size_t l3 = (f[12] == 0x81 && f[13] == 0x00) ? 18 : 14;
        bool v4 = f[l3 - 2] == 0x08 && f[l3 - 1] == 0x00;
        size_t l4 = vh.csum_start, cso = l4 + vh.csum_offset;
        if (l4 >= len || cso + 2 > len || l4 > 255 || cso > 255)
            return false;
        uint32_t tucmd = 0, paylen = 0, mss = 0, hdr_len = 0;
        bool tso = (vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE;
        if (tso) {
            if (l4 + 20 > len)
                return false;
            hdr_len = (uint32_t)(l4 + ((f[l4 + 12] >> 4) * 4u));
            if (hdr_len > len || hdr_len > 255)
                return false;
            mss = vh.gso_size;
            paylen = (uint32_t)(len - hdr_len);
            tucmd = 0x1 | 0x4 | (v4 ? 0x2 : 0);         /* TCP | TSE | IP */
            d->st.tx_tso++;
        } else {
            tucmd = v4 ? 0x2 : 0;
            d->st.tx_csum++;
        }
        uint64_t ip = l3 | (l3 + 10) << 8 | (uint64_t)(v4 ? l4 - 1 : 0) << 16;
        uint64_t tu = l4 | cso << 8;
        put_desc(d, ip | tu << 32, paylen | 1u << 29 | tucmd << 24, hdr_len << 8 | mss << 16);
        dext = true;
        dcmd = 1u << 29 | 1u << 20 | (tso ? 1u << 26 : 0);
        popts = 0x2 | (v4 && tso ? 0x1 : 0);            /* TXSM, IXSM */
    }
    for (size_t off = 0; off < len;) {
        size_t chunk = len - off < TXBUF ? len - off : TXBUF;
        unsigned i = d->tx_tail;
        memcpy(d->txbuf + (size_t)i * TXBUF, f + off, chunk);
        off += chunk;
        uint32_t cmd = 0x02u << 24;                     /* IFCS */
        if (off == len)
            cmd |= (0x01u | 0x08u) << 24;               /* EOP | RS */
        if (dext)
            put_desc(d, d->txbuf_gpa + (uint64_t)i * TXBUF, (uint32_t)chunk | cmd | dcmd,
                     popts << 8);
        else
            put_desc(d, d->txbuf_gpa + (uint64_t)i * TXBUF, (uint32_t)chunk | cmd, 0);
    }
    d->st.tx_frames++;
    d->st.tx_bytes += len;
    return true;
}

/* Move up to TX_BATCH frames from eth0; one TDT write. Returns frames queued, -1 TAP empty. */
static int tx_pump(struct drv *d)
{
    int queued = 0;
    bool empty = false;
    tx_reclaim(d);
    while (queued < (int)TX_BATCH && tx_free(d) >= 65536 / TXBUF + 3) {
        ssize_t n = read(d->tap_fd, d->frame, FRAME_MAX);
        if (n < 0) {
            empty = true;
            break;
        }
        if ((size_t)n < SX_TAP_VNET_HDR_LEN || !tx_frame(d, d->frame, (size_t)n)) {
            d->st.tx_drops++;
            continue;
        }
        queued++;
    }
    if (queued) {
        xen_wmb(); /* descriptors and buffers written before the tail moves */
        wr(d, TDT, d->tx_tail);
        tx_reclaim(d);
    }
    return queued ? queued : (empty ? -1 : 0);
}

/* --help: to stdout, status 0; a usage error: to stderr, status 2. */
static void usage_to(FILE *f, int status)
{
    fprintf(f, "usage: splitxen-hvmnet --domid N --netns NAME --ip A.B.C.D/P "
               "[--mmio ADDR] [--stats]\n"
               "       splitxen-hvmnet --help | --version\n");
    exit(status);
}

static void usage(void) { usage_to(stderr, 2); }

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' }, { "netns", required_argument, NULL, 'n' },
        { "ip", required_argument, NULL, 'i' },    { "mmio", required_argument, NULL, 'm' },
        { "stats", no_argument, NULL, 's' },       { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    long domid = -1;
    const char *netns = NULL, *ip = NULL;
    uint64_t mmio = 0xf0000000ull;
    bool stats = false;
    int c;
    while ((c = getopt_long(argc, argv, "d:n:i:m:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': domid = strtol(optarg, NULL, 10); break;
        case 'n': netns = optarg; break;
        case 'i': ip = optarg; break;
        case 'm': mmio = strtoull(optarg, NULL, 0); break;
        case 's': stats = true; break;
        case 'h': usage_to(stdout, 0); break;
        case 'V': return sx_print_version("splitxen-hvmnet");
        default: usage();
        }
    }
    if (domid < 1 || domid >= DOMID_FIRST_RESERVED || !netns || !ip || optind != argc ||
        !*netns || strchr(netns, '/') || strlen(netns) > 200)
        usage();
    char ipbuf[32];
    snprintf(ipbuf, sizeof(ipbuf), "%s", ip);
    char *slash = strchr(ipbuf, '/');
    struct in_addr addr;
    long prefix = slash ? strtol(slash + 1, NULL, 10) : -1;
    if (!slash || prefix < 0 || prefix > 32 || (*slash = 0, inet_pton(AF_INET, ipbuf, &addr)) != 1)
        usage();

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1, rc, netns_fd = -1, sig_fd = -1;
    bool made_netns = false;
    struct sx_plat *plat = NULL;
    struct sx_tap *tap = NULL;
    struct sx_nl *nl = NULL;
    struct drv d = { .tap_fd = -1 };
    d.frame = malloc(FRAME_MAX + 64);
    sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (!d.frame || sig_fd < 0)
        goto out;
    if ((rc = sx_plat_open(&plat, SX_PLAT_SIM, (domid_t)domid, NULL)) < 0) {
        sx_err("cannot act as dom%ld: %s", domid, strerror(-rc));
        goto out;
    }
    if ((rc = sx_ioreq_guest_open(&d.g, plat, 0)) < 0) {
        sx_err("ioreq guest side of dom%ld: %s", domid, strerror(-rc));
        goto out;
    }
    sx_ioreq_guest_set_timeout(d.g, 10000);
    if ((rc = probe(&d, mmio)) < 0) {
        sx_err("no e1000 found: %s", strerror(-rc));
        goto out;
    }
    if ((rc = nic_init(&d)) < 0) {
        sx_err("e1000 init: %s", strerror(-rc));
        goto out;
    }
    netns_fd = sx_nl_netns_open(netns);
    if (netns_fd == -ENOENT) {
        if ((rc = sx_nl_netns_add(netns)) < 0) {
            sx_err("cannot create network namespace %s: %s", netns, strerror(-rc));
            goto out;
        }
        made_netns = true;
        netns_fd = sx_nl_netns_open(netns);
    }
    if (netns_fd < 0) {
        sx_err("cannot open network namespace %s: %s", netns, strerror(-netns_fd));
        goto out;
    }
    struct sx_tap_config tc = { .name = "eth0", .mac = d.mac, .offload = SX_TAP_OFFLOADS,
                                .up = true, .use_netns = true, .netns_fd = netns_fd };
    if ((rc = sx_tap_open(&tc, &tap)) < 0) {
        sx_err("cannot create eth0 in %s: %s", netns, strerror(-rc));
        goto out;
    }
    d.tap_fd = sx_tap_fd(tap, 0);
    if ((rc = sx_nl_open_netns(netns_fd, &nl)) < 0 ||
        (rc = sx_nl_addr_add_v4(nl, sx_tap_ifindex(tap), addr, (unsigned)prefix)) < 0) {
        sx_err("cannot give eth0 address %s: %s", ip, strerror(-rc));
        goto out;
    }
    int lo;
    if (made_netns && sx_nl_ifindex(nl, "lo", &lo) == 0)
        (void)sx_nl_link_set_up(nl, lo, true);
    printf("splitxen-hvmnet: dom%ld e1000 %02x:%02x:%02x:%02x:%02x:%02x -> eth0 in %s, %s\n",
           domid, d.mac[0], d.mac[1], d.mac[2], d.mac[3], d.mac[4], d.mac[5], netns, ip);
    fflush(stdout);

    int irq_fd = sx_ioreq_guest_irq_fd(d.g);
    bool tap_more = false, rx_busy = false;
    while (!d.failed) {
        struct pollfd p[3] = { { .fd = sig_fd, .events = POLLIN },
                               { .fd = irq_fd, .events = POLLIN },
                               { .fd = d.tap_fd, .events = POLLIN } };
        /* With tx descriptors short, do not look at eth0; with frames left in eth0 or rx
         * descriptors completing, come back at once. */
        int np = tx_free(&d) >= 65536 / TXBUF + 3 ? 3 : 2;
        int n = poll(p, (nfds_t)np, tap_more || rx_busy ? 0 : 200);
        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents)
            while (sx_ioreq_guest_irq_wait(d.g, 0) > 0)
                ;
        /* While descriptors keep completing, leave the line up (no new edges, no ICR round
         * trip); once the ring is empty, acknowledge with the ICR read and look once more, so
         * a frame that landed before the read is not left waiting for the next interrupt. */
        unsigned got = rx_clean(&d);
        if (!got && sx_ioreq_guest_irq_level(d.g, d.gsi)) {
            d.st.irqs++;
            uint32_t icr = rd(&d, ICR);                 /* read-to-clear lowers the line */
            if (icr & ICR_LSC)
                sx_info("link %s", (rd(&d, STATUS) & 2) ? "up" : "down");
            got = rx_clean(&d);
        }
        rx_busy = got > 0;
        tap_more = false;
        if (np == 3 && p[2].revents)
            tap_more = tx_pump(&d) > 0;
        else if (np == 2)
            tx_reclaim(&d);
    }
    if (d.failed)
        sx_err("device model stopped answering");
    else
        ret = 0;
out:
    if (stats || ret)
        printf("hvmnet: rx_frames=%" PRIu64 " rx_bytes=%" PRIu64 " tx_frames=%" PRIu64
               " tx_bytes=%" PRIu64 " tx_tso=%" PRIu64 " tx_csum=%" PRIu64 " mmio=%" PRIu64
               " irqs=%" PRIu64 " rx_errors=%" PRIu64 " tx_drops=%" PRIu64 "\n",
               d.st.rx_frames, d.st.rx_bytes, d.st.tx_frames, d.st.tx_bytes, d.st.tx_tso,
               d.st.tx_csum, d.st.mmio, d.st.irqs, d.st.rx_errors, d.st.tx_drops);
    if (d.g && d.bar0 && !d.failed) {
        wr(&d, IMC, 0xffffffff);
        wr(&d, RCTL, 0);
        wr(&d, TCTL, 0);
    }
    sx_nl_close(nl);
    sx_tap_close(tap);
    if (netns_fd >= 0)
        close(netns_fd);
    if (made_netns)
        sx_nl_netns_del(netns);
    sx_ioreq_guest_close(d.g);
    sx_plat_close(plat);
    free(d.frame);
    if (sig_fd >= 0)
        close(sig_fd);
    return ret;
}

/*
 * An emulated Intel 82540EM (8086:100E) as QEMU's e1000 presents it, on the device model
 * framework (device-model/dm.h):
 *
 *   BAR0  128 KiB MMIO registers; BAR1 64 I/O ports (IOADDR at 0, IODATA at 4); INTA#.
 *   CTRL (RST, SLU), STATUS (link up, full duplex, 1000 Mb/s), EECD (Microwire bit-bang, what
 *   Linux's e1000 uses on an 82540) and EERD, a 64-word EEPROM holding the MAC, the device ids
 *   and the 0xBABA checksum, CTRL_EXT, MDIC with an M88E1011 PHY at address 1 (link up,
 *   autonegotiation complete), ICR (read-to-clear, write-one-to-clear) / ICS / IMS / IMC with the
 *   INTx line = (ICR & IMS) != 0, RCTL / TCTL, the rx and tx ring registers, RAL/RAH[16], MTA[128],
 *   VFTA, statistics 0x4000..0x40FF (clear on read), TIPG and the rest as plain storage.
 *
 * Transmit: legacy descriptors (with CMD.IC checksum insertion) and extended context + data
 * descriptors: IXSM (IPv4 header checksum, done in the device), TXSM (TCP/UDP checksum, passed to
 * the world as a vnet header NEEDS_CSUM, which has the same semantics) and TSE (TCP segmentation:
 * the device fixes the IP length/checksum and the TCP pseudo-header checksum of the whole frame
 * and hands it to the world as one GSO frame (TCPV4 / TCPV6, gso_size = MSS); the kernel cuts it).
 * Receive: legacy descriptors, frames spanning descriptors (buffer size from RCTL.BSIZE/BSEX),
 * 4 CRC bytes counted unless RCTL.SECRC, status IXSM (no checksum indication), filtering by
 * RAL/RAH (AV), broadcast (BAM), multicast (MTA with RCTL.MO, MPE) and promiscuous (UPE).
 * No VLAN insertion/stripping, no interrupt moderation timers (ITR/RDTR/TIDV stored only), no
 * MSI (the 82540 has none), no wake-on-LAN.
 *
 * Every register value and descriptor is guest-controlled: a descriptor is read once into a
 * local copy; every buffer goes through sx_pci_dma_* (bounded to guest memory, needs
 * BUS_MASTER); a ring whose head or tail lies outside its length is not processed (counted);
 * one kick processes at most one ring's worth; a frame larger than SX_E1000_MAX_FRAME is dropped.
 *
 * World side: a TAP (netdev/tap.h, vnet header on) on a bridge, served by the dm loop; or, for
 * tests, any datagram fd carrying the same [virtio_net_hdr_v1 | Ethernet frame] units. While the
 * guest has posted no rx buffers the world fd is not read (backpressure, one frame held).
 *
 * All calls return 0 on success and -errno on failure.
 */
#ifndef SPLITXEN_DEVICE_MODEL_E1000_H
#define SPLITXEN_DEVICE_MODEL_E1000_H

#include <stdbool.h>
#include <stdint.h>

#include "device-model/dm.h"

#define SX_E1000_MAX_FRAME 65550u   /* largest frame assembled from tx descriptors */

struct sx_e1000;

struct sx_e1000_cfg {
    int devfn;              /* PCI (dev << 3) | fn, or -1 for the next free slot */
    uint8_t mac[6];
    bool has_mac;           /* false: 00:16:3e:<derived from domid and devid> */
    unsigned devid;         /* the vif index n (names, default MAC) */
    char tap_name[16];      /* "" : "hvm<domid>.<devid>" */
    char bridge[16];        /* "" : "xenbr0"; "-" : do not attach to a bridge */
    unsigned mtu;           /* TAP MTU, 0: 1500 */
    /* Tests: use this datagram fd as the world side instead of a TAP (not closed by us). */
    bool use_world_fd;
    int world_fd;
    /* Tests: do not register the world fd with the dm loop; call sx_e1000_poll instead. */
    bool no_watch;
};

struct sx_e1000_stats {
    uint64_t tx_frames, tx_bytes, tx_tso, tx_csum, tx_world_errors, tx_dropped;
    uint64_t tx_bad_ctx, tx_oversize;
    uint64_t rx_frames, rx_bytes, rx_filtered, rx_oversize, rx_disabled, rx_short;
    uint64_t world_errors;      /* the world fd failed: receive stopped */
    uint64_t rx_paused;         /* times the world fd was parked for lack of rx buffers */
    uint64_t desc_dma_errors;   /* descriptor read / write-back refused (outside memory, no BM) */
    uint64_t buf_dma_errors;    /* data buffer DMA refused */
    uint64_t ring_errors;       /* head/tail outside the ring, zero-length ring */
    uint64_t ring_budget;       /* kicks that stopped after one ring's worth */
    uint64_t irq_raises, resets, eeprom_reads, mdic_ops;
};

/* Parse an xl vif spec ("mac=00:16:3e:..,bridge=xenbr0,model=e1000,vifname=..") into cfg,
 * starting from defaults (devfn -1). Unknown keys are ignored (type, script, ip...). 0 or
 * -EINVAL (bad mac, name too long). *is_e1000 tells whether model= asked for an e1000
 * (model=e1000 or model=82540em). */
int sx_e1000_parse_vif(const char *spec, unsigned devid, struct sx_e1000_cfg *cfg,
                       bool *is_e1000);

/* Add the NIC to dm (removed with the dm, or by the platform device's NIC unplug). The TAP is
 * created here (root/CAP_NET_ADMIN). *out may be NULL. 0 or -errno. */
int sx_e1000_add(struct sx_dm *dm, const struct sx_e1000_cfg *cfg, struct sx_e1000 **out);

/* Serve the world side once (what the dm loop does when the fd is readable): move frames into
 * posted rx descriptors. Returns frames delivered or -errno. */
int sx_e1000_poll(struct sx_e1000 *e);
/* Link state as the guest sees it (STATUS.LU, PHY status); a change raises ICR.LSC. */
void sx_e1000_set_link(struct sx_e1000 *e, bool up);
const struct sx_e1000_stats *sx_e1000_stats(const struct sx_e1000 *e);
struct sx_pci *sx_e1000_pci(struct sx_e1000 *e);
/* The TAP's name, or "" when a world fd is used. */
const char *sx_e1000_ifname(const struct sx_e1000 *e);

#endif

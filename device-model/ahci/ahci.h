/*
 * An AHCI 1.0 SATA controller as QEMU's ich9-ahci presents it (8086:2922, class 010601, ABAR in
 * BAR5 as 4 KiB of MMIO, INTA#) with one port and one disk on it. The disk is an image file
 * (or block device) served by a blkio engine (blkio/blkio.h, as blkback's rings are): commands
 * are issued to the engine asynchronously and completed from its eventfd, watched in the
 * device model's loop.
 *
 * Implemented: generic host control (CAP with NCQ and 32 slots, GHC AE/IE/HR, IS, PI, VS),
 * port 0 (CLB/FB, IS/IE, CMD ST/CR FRE/FR, TFD, SIG, SSTS/SCTL/SERR, SACT, CI), the command
 * list, command tables and PRDTs, the received FIS area (D2H register, PIO setup, set device
 * bits), ATA IDENTIFY DEVICE, READ/WRITE DMA (EXT), READ/WRITE FPDMA QUEUED, FLUSH CACHE
 * (EXT), SET FEATURES, DATA SET MANAGEMENT (TRIM), INTx interrupts. A failed command
 * completes with ERR/ABRT in PxTFD and the FIS and PxIS.TFES; the port keeps running (as
 * QEMU's does). PRDBC in the command header holds the bytes moved (0 on failure) for every
 * data command, NCQ included.
 *
 * Every command header, FIS and PRDT entry is guest memory: each is copied once through the
 * framework's bounded DMA and validated on the copy.
 *
 * All calls return 0 or -errno.
 */
#ifndef SPLITXEN_DEVICE_MODEL_AHCI_H
#define SPLITXEN_DEVICE_MODEL_AHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "blkio/blkio.h"
#include "device-model/dm.h"

struct sx_ahci;

struct sx_ahci_cfg {
    const char *path;           /* image file or block device (required) */
    bool read_only;             /* writes fail with ABRT; IDENTIFY still reports the disk */
    int devfn;                  /* PCI devfn, -1: the next free slot */
    enum sx_bio_kind engine;    /* SX_BIO_AUTO: sx_bio_kind_auto on the opened file */
    bool no_direct;             /* do not try O_DIRECT */
    const char *serial;         /* IDENTIFY serial (20 chars max), NULL: "SX" + a hash */
    const char *model;          /* IDENTIFY model (40 chars max), NULL: "splitxen AHCI disk" */
};

struct sx_ahci_stats {
    uint64_t cmds, reads, writes, flushes, trims, identifies, ncq, other_ok;
    uint64_t bytes_read, bytes_written;
    uint64_t failed, bad_header, bad_fis, bad_prdt, dma_errors, out_of_range, unsupported;
    uint64_t io_errors, resets, stale_completions, bounced, irqs;
};

/* Add the controller to dm (a device named "ahci", unplugged by SX_DM_UNPLUG_DISKS). The
 * image is opened here (O_DIRECT where possible, O_RDONLY with read_only); its size, rounded
 * down to 512-byte sectors, is the disk. */
int sx_ahci_add(struct sx_dm *dm, const struct sx_ahci_cfg *cfg, struct sx_ahci **out);
const struct sx_ahci_stats *sx_ahci_stats(const struct sx_ahci *a);
uint64_t sx_ahci_sectors(const struct sx_ahci *a);
struct sx_pci *sx_ahci_pci(struct sx_ahci *a);
/* The engine actually used (after SX_BIO_AUTO), and whether the file is open O_DIRECT. */
enum sx_bio_kind sx_ahci_engine(const struct sx_ahci *a);
bool sx_ahci_direct(const struct sx_ahci *a);
/* Wait up to timeout_ms for engine completions and complete their commands, as the dm loop
 * does through sx_dm_watch_fd (tests drive the device without the loop). 1 if something was
 * processed, 0 on timeout, -errno. Same thread as every other device callback. */
int sx_ahci_poll(struct sx_ahci *a, int timeout_ms);
/* Engine operations in flight. */
unsigned sx_ahci_inflight(const struct sx_ahci *a);
/* Controllers removed while their engine could not stop every command (a hung device): their
 * buffers and guest mappings are kept for the life of the process rather than freed under
 * the kernel's feet (see sx_bio_close). Process-wide. */
unsigned sx_ahci_held(void);

#endif

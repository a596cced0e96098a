/*
 * The device model framework: a registry of emulated devices with port / MMIO / PCI config
 * dispatch, one PCI root bus (bus 0) with standard type-0 headers, BAR sizing and placement by
 * the guest, INTx interrupts, bounded DMA into guest memory, and device removal (the Xen platform
 * device's unplug protocol). One sx_dm serves one HVM domain, fed by an sx_ioreq server
 * (ioreq/ioreq.h), single-threaded: every callback below runs in the thread that calls
 * sx_dm_run / sx_dm_dispatch, never concurrently.
 *
 * Every value a device callback receives (register offsets, written values, sizes) and every
 * DMA address is guest-controlled.
 *
 * All calls return 0 (or a count) on success and -errno on failure.
 */
#ifndef SPLITXEN_DEVICE_MODEL_DM_H
#define SPLITXEN_DEVICE_MODEL_DM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ioreq/ioreq.h"

struct sx_dm;
struct sx_dm_dev;
struct sx_pci;

/* Register access callbacks of a port or MMIO region / BAR. `off` is relative to the region's
 * base, size is 1, 2, 4 or 8 and the access lies wholly inside the region. */
struct sx_dm_io_ops {
    uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
    void (*write)(void *opaque, uint64_t off, uint64_t val, unsigned size);
};

/* Unplug classes (the Xen platform device's port 0x10 bits, as QEMU reads them). */
#define SX_DM_UNPLUG_DISKS     1u   /* UNPLUG_ALL_IDE_DISKS: IDE/SATA/SCSI disks */
#define SX_DM_UNPLUG_NICS      2u   /* UNPLUG_ALL_NICS */
#define SX_DM_UNPLUG_AUX_DISKS 4u   /* UNPLUG_AUX_IDE_DISKS: all disks but the primary master */

struct sx_dm_dev_ops {
    const char *name;
    /* A write of any of these bits to port 0x10 removes the device (0: never unplugged). A
     * primary disk uses SX_DM_UNPLUG_DISKS, other disks DISKS | AUX_DISKS, a NIC NICS. */
    unsigned unplug_mask;
    /* Quiesce before an unplug (stop DMA, flush): the guest moves to PV devices. Optional. */
    void (*unplug)(void *opaque);
    /* Free the device's state; called exactly once, when it is removed or the dm closes.
     * Its regions, PCI function and interrupt are gone by then (the line is lowered). */
    void (*destroy)(void *opaque);
};

struct sx_dm_stats {
    uint64_t accesses, unclaimed, pci_cfg_reads, pci_cfg_writes, pci_cfg_absent;
    uint64_t bar_maps, bar_unmaps, bar_conflicts, irq_errors, dma_refused, dma_no_master;
    uint64_t unplug_requests, devices_unplugged;
    uint64_t spin_hits;         /* requests picked up while polling, without a wakeup */
};

/* ---- the device model ---- */

/* Open an empty device model for `domid`. Attach the ioreq server with sx_dm_set_ioreq once it
 * exists (it takes sx_dm_ioreq_handler, dm as its handler). */
int sx_dm_open(struct sx_dm **out, domid_t domid);
/* Removes (destroys) every device; NULL-safe. Does not close the ioreq server. */
void sx_dm_close(struct sx_dm *dm);
/* Attach (or with NULL detach) the ioreq server: every region and PCI function registered so
 * far and later is claimed on it; interrupts and DMA go through it. */
int sx_dm_set_ioreq(struct sx_dm *dm, struct sx_ioreq *r);
struct sx_ioreq *sx_dm_ioreq(struct sx_dm *dm);
/* The sx_ioreq_handler_fn to give sx_ioreq_open (opaque = the dm). */
void sx_dm_ioreq_handler(void *dm, struct sx_ioreq_access *a);
/* Dispatch one access directly (tests; the handler does the same). */
uint64_t sx_dm_read(struct sx_dm *dm, uint8_t type, uint64_t addr, unsigned size);
void sx_dm_write(struct sx_dm *dm, uint8_t type, uint64_t addr, uint64_t val, unsigned size);
const struct sx_dm_stats *sx_dm_stats(const struct sx_dm *dm);
domid_t sx_dm_domid(const struct sx_dm *dm);

/* Extra fds for devices' back ends (a TAP, an I/O engine's eventfd), served by sx_dm_run. */
typedef void (*sx_dm_fd_fn)(void *opaque, uint32_t events);
int sx_dm_watch_fd(struct sx_dm *dm, int fd, uint32_t events, sx_dm_fd_fn fn, void *opaque);
int sx_dm_unwatch_fd(struct sx_dm *dm, int fd);
/* After serving a request, poll the ioreq slots this long before sleeping (default 20 us;
 * 0 disables; at most 10000). */
void sx_dm_set_spin(struct sx_dm *dm, unsigned us);
/* PCI devices added without a devfn take the first free slot from here (default 1). On real
 * Xen the default device model owns the low slots (host bridge 0, PIIX3 1, platform device 2,
 * its own NICs next). 0 or -EINVAL (1..31). */
int sx_dm_set_first_slot(struct sx_dm *dm, unsigned slot);
/* Serve the ioreq server and the watched fds until *stop or the domain dies. 0 or -errno. */
int sx_dm_run(struct sx_dm *dm, atomic_int *stop);

/* ---- devices ---- */

int sx_dm_dev_add(struct sx_dm *dm, const struct sx_dm_dev_ops *ops, void *opaque,
                  struct sx_dm_dev **out);
/* Remove a device: its regions and PCI function disappear, its interrupt is lowered, then
 * ops->destroy runs. */
void sx_dm_dev_remove(struct sx_dm_dev *dev);
/* The platform device's unplug: for every device whose unplug_mask meets `mask`, ops->unplug
 * then removal. Returns how many were removed. */
int sx_dm_unplug(struct sx_dm *dm, unsigned mask);
/* A fixed port or MMIO region [base, base+len) owned by dev. -EEXIST on overlap. */
int sx_dm_dev_region(struct sx_dm_dev *dev, enum sx_ioreq_space sp, uint64_t base, uint64_t len,
                     const struct sx_dm_io_ops *ops, void *opaque);
/* An ISA interrupt line level (UART: 4). Only changes are passed on. */
int sx_dm_dev_set_isa_irq(struct sx_dm_dev *dev, uint8_t irq, bool level);
unsigned sx_dm_nr_devices(const struct sx_dm *dm);
/* Find a device by ops->name (tests). */
struct sx_dm_dev *sx_dm_dev_find(struct sx_dm *dm, const char *name);

/* ---- PCI (bus 0) ---- */

#define SX_PCI_BAR_IO       0x1u
#define SX_PCI_BAR_MEM32    0x0u
#define SX_PCI_BAR_MEM64    0x4u
#define SX_PCI_BAR_PREFETCH 0x8u

struct sx_pci_info {
    int devfn;                  /* (dev << 3) | fn, or -1 for the next free slot, function 0 */
    uint16_t vendor, device, subsys_vendor, subsys_id;
    uint32_t class_code;        /* class << 16 | subclass << 8 | prog-if */
    uint8_t revision;
    uint8_t irq_pin;            /* 0 none, 1..4 = INTA#..INTD# */
    uint8_t header_type;        /* 0 (normal); 0x80 bit for multi-function is set for you */
    /* Optional: after the generic config write (reg, size as the guest wrote; val masked to
     * what was writable is in the config space already). */
    void (*config_write)(void *opaque, struct sx_pci *pd, uint8_t reg, uint32_t val,
                         unsigned size);
    /* Optional: override a config read (return the value; `val` is the generic result). */
    uint32_t (*config_read)(void *opaque, struct sx_pci *pd, uint8_t reg, uint32_t val,
                            unsigned size);
    void *opaque;
};

/* Add a PCI function owned by dev (one per device). -EEXIST if devfn is taken, -ENOSPC. */
int sx_pci_add(struct sx_dm_dev *dev, const struct sx_pci_info *info, struct sx_pci **out);
/* Declare BAR n (0..5; a 64-bit BAR also takes n+1). size: a power of two, >= 4 for I/O (at
 * most 256), >= 16 for memory. Unplaced until the guest writes an address and enables
 * decoding in COMMAND (I/O or memory space). */
int sx_pci_bar(struct sx_pci *pd, unsigned n, uint64_t size, unsigned flags,
               const struct sx_dm_io_ops *ops, void *opaque);
/* Where BAR n is mapped now, or UINT64_MAX. */
uint64_t sx_pci_bar_addr(const struct sx_pci *pd, unsigned n);
uint8_t sx_pci_devfn(const struct sx_pci *pd);
/* Raw config space (256 bytes) and the writable-bit mask, for capabilities. */
uint8_t *sx_pci_config(struct sx_pci *pd);
void sx_pci_set_wmask(struct sx_pci *pd, uint8_t reg, unsigned len, uint8_t mask);
/* INTx level of the function's pin (honours COMMAND.INTX_DISABLE; sets STATUS.INTERRUPT). */
int sx_pci_set_irq(struct sx_pci *pd, bool level);
/* DMA by the function: -EPERM unless COMMAND.BUS_MASTER is set; -EFAULT outside guest memory. */
int sx_pci_dma_read(struct sx_pci *pd, uint64_t gpa, void *buf, size_t len);
int sx_pci_dma_write(struct sx_pci *pd, uint64_t gpa, const void *buf, size_t len);
void *sx_pci_dma_map(struct sx_pci *pd, uint64_t gpa, size_t len, bool writable);
void sx_pci_dma_unmap(struct sx_pci *pd, void *ptr, size_t len);
/* An MSI (when the device programs one itself). */
int sx_pci_msi(struct sx_pci *pd, uint64_t addr, uint32_t data);
/* Config access as bus/devfn/register (both 0xCF8/0xCFC and IOREQ_TYPE_PCI_CONFIG end here). */
uint32_t sx_dm_pci_cfg_read(struct sx_dm *dm, uint8_t bus, uint8_t devfn, uint16_t reg,
                            unsigned size);
void sx_dm_pci_cfg_write(struct sx_dm *dm, uint8_t bus, uint8_t devfn, uint16_t reg,
                         uint32_t val, unsigned size);

/* ---- built-in devices ---- */

/* The PCI host bridge at 00:00.0 (i440FX ids, as Xen HVM guests see it) and the type 1
 * configuration mechanism on ports 0xCF8 (address) and 0xCFC..0xCFF (data). */
int sx_dm_pci_host_add(struct sx_dm *dm);

struct sx_uart;
/* A 16550A at `base` (0x3F8) on ISA irq (4); transmitted bytes are written to out_fd (-1:
 * dropped). */
int sx_uart_add(struct sx_dm *dm, uint16_t base, uint8_t irq, int out_fd, struct sx_uart **out);
/* Bytes arriving on the line (console input); returns how many fitted in the receive FIFO. */
size_t sx_uart_receive(struct sx_uart *u, const void *buf, size_t len);
struct sx_uart_stats { uint64_t tx_bytes, rx_bytes, rx_overruns, out_errors; };
const struct sx_uart_stats *sx_uart_stats(const struct sx_uart *u);

struct sx_xen_platform;
/* The Xen platform PCI device (5853:0001, class ff80, BAR0 I/O 256, BAR1 16 MiB prefetchable
 * memory, INTA#) at devfn (-1: 00:02.0) and its fixed I/O ports 0x10..0x1f with the unplug
 * protocol (magic 0x49d2 on a 16-bit read of 0x10). with_fixed_ports=false on Xen, where the
 * default device model owns port 0x10. */
int sx_xen_platform_add(struct sx_dm *dm, int devfn, bool with_fixed_ports,
                        struct sx_xen_platform **out);
struct sx_xen_platform_stats { uint64_t unplug_writes, unplugged, log_bytes; uint16_t product; };
const struct sx_xen_platform_stats *sx_xen_platform_stats(const struct sx_xen_platform *x);

#endif

/*
 * xl.cfg parsing for the splitxen toolstack.
 *
 * The file syntax is Xen's own: libxlutil reads the file (syntax errors come back with the
 * file name and line), parses disk specs (xlu_disk_parse, xl-disk-configuration(5)) and vif
 * rates (xlu_vif_parse_rate). Everything else -- the set of top-level keys we accept, vif
 * specs, vdev numbers, target checks -- is done here, with every error naming the file, the
 * line of the offending setting (or list item) and the key:
 *
 *     examples/bad.cfg:7: disk: unknown key 'formt' in disk spec 'formt=raw, ...'
 *
 * All functions return 0 or -errno (-EINVAL for a bad configuration, with the message in
 * the caller's buffer).
 */
#ifndef SPLITXEN_TOOLSTACK_XLCFG_H
#define SPLITXEN_TOOLSTACK_XLCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sx_cfg_domtype { SX_CFG_PV = 0, SX_CFG_HVM = 1 };

/* on_poweroff / on_reboot / on_crash / on_watchdog / on_soft_reset (xl.cfg(5)). */
enum sx_cfg_action {
    SX_CFG_ACT_DESTROY = 0,
    SX_CFG_ACT_RESTART,
    SX_CFG_ACT_RENAME_RESTART,
    SX_CFG_ACT_PRESERVE,
    SX_CFG_ACT_COREDUMP_DESTROY,
    SX_CFG_ACT_COREDUMP_RESTART,
    SX_CFG_ACT_SOFT_RESET,
};

enum sx_cfg_disk_backend { SX_CFG_DISK_PHY = 0, SX_CFG_DISK_QDISK = 1 };
enum sx_cfg_nic_type { SX_CFG_NIC_VIF = 0, SX_CFG_NIC_IOEMU = 1 };

struct sx_cfg_disk {
    char *spec;          /* the spec as written */
    int line;            /* line of the spec in its file (0: not from a file) */
    char *vdev;          /* "xvda" */
    uint32_t devid;      /* virtual-device number, as libxl computes it (xvda = 51712) */
    char *target;        /* backend "params": a path, or a network target (rbd:, nbd://) */
    bool net;            /* target is rbd:POOL/IMAGE..., nbd://... or nbd+unix://... */
    bool readwrite;      /* access=rw (default) */
    bool cdrom;          /* devtype=cdrom */
    bool discard;        /* discard-enable: default = readwrite, as libxl */
    bool trusted;        /* default true */
    enum sx_cfg_disk_backend backendtype;
    char *script;        /* NULL: "block" for phy (none for a network target), none for qdisk */
    char *backend;       /* backend domain, name or id; NULL: the toolstack domain (0) */
};

struct sx_cfg_vif {
    char *spec;
    int line;
    int devid;           /* devid= or the position among the vifs */
    uint8_t mac[6];      /* mac= or generated 00:16:3e:xx:xx:xx */
    char *bridge;        /* default "xenbr0" */
    char *ip;            /* may be NULL */
    char *model;         /* default "rtl8139" (HVM emulated NIC only) */
    char *script;        /* default "vif-bridge" */
    char *vifname;       /* may be NULL */
    char *gatewaydev;    /* may be NULL */
    char *backend;       /* backend domain, name or id; NULL: 0 */
    enum sx_cfg_nic_type type;
    uint64_t rate_bytes_per_interval;   /* 0 with rate_interval_usecs 0: unlimited */
    uint32_t rate_interval_usecs;
    unsigned mtu;        /* default 1500 */
    unsigned queues;     /* splitxen extra: queues=N caps multi-queue; 0 = backend default */
    bool trusted;
};

struct sx_domcfg {
    char *file;                  /* the path it was read from */
    char *name;
    enum sx_cfg_domtype type;
    uint64_t memory_mib;         /* memory= (default 32, as libxl) */
    uint64_t maxmem_mib;         /* maxmem= (default memory) */
    unsigned vcpus;              /* vcpus= (default 1) */
    unsigned maxvcpus;           /* maxvcpus= (default vcpus) */
    char *uuid;                  /* uuid= or NULL (the toolstack generates one) */
    char *kernel, *ramdisk, *extra, *cmdline, *root;   /* accepted and stored */
    enum sx_cfg_action on_poweroff, on_reboot, on_crash, on_watchdog, on_soft_reset;
    struct sx_cfg_disk *disks;
    size_t ndisks;
    struct sx_cfg_vif *vifs;
    size_t nvifs;
};

/* Read and validate an xl.cfg file. On -EINVAL, err holds "file:line: key: message".
 * *out is NULL on failure. Free with sx_cfg_free. */
int sx_cfg_parse_file(const char *path, struct sx_domcfg **out, char *err, size_t errlen);

/* The same from text in memory (a save image's config); `name` stands for the file in
 * messages. */
int sx_cfg_parse_data(const char *name, const char *text, size_t len, struct sx_domcfg **out,
                      char *err, size_t errlen);

/* NULL-safe. */
void sx_cfg_free(struct sx_domcfg *cfg);

/* Parse one disk spec (block-attach). `where` names the source for messages ("block-attach"
 * or a file), `line` 0 leaves the line out. Fills *disk; release with sx_cfg_disk_clear.
 * Checks the target like the file parser does. Returns 0 or -EINVAL/-ENOMEM. */
int sx_cfg_parse_disk(const char *spec, const char *where, int line, struct sx_cfg_disk *disk,
                      char *err, size_t errlen);
void sx_cfg_disk_clear(struct sx_cfg_disk *disk);

/* Parse one vif spec (network-attach); devid is the default when the spec has no devid=. */
int sx_cfg_parse_vif(const char *spec, const char *where, int line, int devid,
                     struct sx_cfg_vif *vif, char *err, size_t errlen);
void sx_cfg_vif_clear(struct sx_cfg_vif *vif);

/* The virtual-device number for a vdev name exactly as libxl__device_disk_dev_number
 * computes it: xvdX (202<<8 | disk<<4 | part, or the extended (1<<28)|(disk<<8)|part for
 * disk > 15 or part > 15), dNpM, hdX (majors 3/22), sdX (major 8), or a plain number.
 * Returns the number (>= 0) or -EINVAL. */
long sx_cfg_vdev_to_devid(const char *vdev);

/* "00:16:3e:00:00:01" -> bytes. Rejects multicast and all-zero addresses. 0 or -EINVAL. */
int sx_cfg_parse_mac(const char *s, uint8_t mac[6]);

/* Names used in xenstore and messages. */
const char *sx_cfg_action_name(enum sx_cfg_action a);
const char *sx_cfg_domtype_name(enum sx_cfg_domtype t);

#endif

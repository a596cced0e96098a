/* Private to grant/: the per-platform operations behind struct sx_gnt and struct sx_gntshr. */
#ifndef SPLITXEN_GRANT_IMPL_H
#define SPLITXEN_GRANT_IMPL_H

#include "grant/grant.h"

struct sx_gnt_ops {
    int (*open)(void **priv, struct sx_plat *p);
    void (*close)(void *priv);
    int (*map)(void *priv, domid_t domid, uint32_t count, const grant_ref_t *refs,
               bool writable, void **addr, int16_t *status);
    int (*unmap)(void *priv, void *addr, uint32_t count);
    int (*copy)(void *priv, uint32_t count, xengnttab_grant_copy_segment_t *segs);
    int (*query)(void *priv, domid_t domid, grant_ref_t ref);   /* NULL: -EOPNOTSUPP */
};

struct sx_gntshr_ops {
    int (*open)(void **priv, struct sx_plat *p);
    void (*close)(void *priv);
    int (*share)(void *priv, domid_t domid, uint32_t count, bool writable, grant_ref_t *refs,
                 void **addr);
    int (*unshare)(void *priv, void *addr, uint32_t count);
    int (*share_buf)(void *priv, domid_t domid, uint32_t count, bool writable,
                     grant_ref_t *refs, void **addr);  /* NULL: share does */
    int (*resume)(void *priv, struct sx_plat *p);   /* NULL: the platform cannot */
};

extern const struct sx_gnt_ops sx_gnt_sim_ops;
extern const struct sx_gnt_ops sx_gnt_xen_ops;
extern const struct sx_gntshr_ops sx_gntshr_sim_ops;
extern const struct sx_gntshr_ops sx_gntshr_xen_ops;

#endif

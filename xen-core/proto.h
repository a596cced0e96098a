/* splitxen-core control protocol: one fixed message each way over a SOCK_SEQPACKET socket,
 * fds riding along with SCM_RIGHTS, optional payload after the reply header. */
#ifndef SPLITXEN_XEN_CORE_PROTO_H
#define SPLITXEN_XEN_CORE_PROTO_H

#include <stdint.h>

enum sxp_op {
    SXP_HELLO = 1,          /* a0 = domid to act as */
    SXP_DOM_CREATE,         /* name, a0 type, a1 mem_mb, a2 vcpus, a3 paused -> a0 domid */
    SXP_DOM_DESTROY,        /* a0 domid */
    SXP_DOM_PAUSE,
    SXP_DOM_UNPAUSE,
    SXP_DOM_LIST,           /* -> a0 count, payload struct sxc_dominfo[] */
    SXP_DOM_LOOKUP,         /* name -> a0 domid */
    SXP_DOM_GET,            /* a0 domid -> fds ctl, mem; a0..a1 ctl size, a2..a3 mem size */
    SXP_EV_REGISTER,        /* fd -> a0 handle */
    SXP_EV_UNREGISTER,      /* a0 handle */
    SXP_EV_ALLOC_UNBOUND,   /* a0 handle, a1 remote -> a0 port */
    SXP_EV_BIND,            /* a0 handle, a1 remote, a2 rport -> a0 port */
    SXP_EV_CLOSE,           /* a0 port */
    SXP_EV_PEER,            /* a0 port -> a0 rdom, a1 rport, a2 rgen, fd */
    /* Suspend and resume (save, restore, migration). */
    SXP_DOM_JOIN,           /* the caller is part of its domain's kernel: it suspends with it */
    SXP_DOM_SUSPEND,        /* a member's suspend hypercall; the reply waits for the resume:
                               a0 SXP_RESUME_*, a1 the domid to go on as, name its core socket */
    SXP_DOM_WAIT_SUSPENDED, /* a0 domid, a1 timeout ms -> a0 members (once all are suspended) */
    SXP_DOM_RESUME,         /* a0 domid (live or gone), a1 SXP_RESUME_*, a2 new domid,
                               name the new core socket -> a0 members released */
    /* Dirty-page tracking (live migration). */
    SXP_DOM_TRACK,          /* fd: a userfaultfd of the caller's mm; a0..a1 address and a2..a3
                               length of its mapping of its own domain's memory */
    SXP_DOM_LOGDIRTY,       /* a0 domid, a1 SXP_LOGDIRTY_* -> a0 pages (ROUND), a1 untracked
                               writers (ENABLE failing with -EOPNOTSUPP) */
    SXP_EV_RESTORE,         /* a0 domid, a1 port, a2 remote domid: an unbound port, restored */
};

/* How a suspended member goes on (SXP_DOM_SUSPEND's a0, SXP_DOM_RESUME's a1). */
enum sxp_resume {
    SXP_RESUME_CANCELLED = 0,   /* the same domain on the same core: nothing moved */
    SXP_RESUME_MOVED = 1,       /* the domain lives on as a1 at the core socket in name */
};

enum sxp_logdirty {
    SXP_LOGDIRTY_ENABLE = 1,    /* start tracking: every page clean, every tracked mapping of
                                   the guest write-protected */
    SXP_LOGDIRTY_ROUND = 2,     /* move the dirty set to the round bitmap, protect again */
    SXP_LOGDIRTY_DISABLE = 3,
};

struct sxp_msg {
    uint32_t op;
    int32_t rc;
    uint32_t a[6];
    char name[128];         /* a domain name (< 64), or a core socket path */
};

#define SXP_MAX_PAYLOAD (64 * 1024)

#endif

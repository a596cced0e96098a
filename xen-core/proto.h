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
};

struct sxp_msg {
    uint32_t op;
    int32_t rc;
    uint32_t a[6];
    char name[64];
};

#define SXP_MAX_PAYLOAD (64 * 1024)

#endif

/*
 * splitxen memory ordering, all in one place, on C11 atomics.
 *
 * <xen/io/ring.h> expects xen_mb/xen_rmb/xen_wmb to be defined before it is included; every
 * splitxen file reaches ring.h through this header (or ring/ring.h, which includes it).
 * The tree builds with -D__XEN_TOOLS__ (as Xen's own tools do), which selects the latest
 * interface version; with the legacy default, ring.h would redefine these as mb()/rmb()/wmb().
 * Each use of a barrier in the tree carries a comment naming what it orders.
 */
#ifndef SPLITXEN_BARRIER_H
#define SPLITXEN_BARRIER_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
/*
 * The ThreadSanitizer build (make check-tsan): TSan does not model stand-alone fences (gcc
 * refuses them under -fsanitize=thread), so there each barrier is a read-modify-write of one
 * process-wide atomic word instead. On the CPU that is at least as strong (a locked
 * instruction on x86); to TSan it is a release and an acquire on the same object, so what one
 * thread wrote before a barrier happens-before what another reads after its next barrier:
 * exactly the publish-then-index / read-index-then-data pattern the barriers stand for.
 */
__attribute__((weak)) _Atomic unsigned sx_tsan_fence_word;
#define sx_mb()  ((void)atomic_fetch_add_explicit(&sx_tsan_fence_word, 0, memory_order_seq_cst))
#define sx_rmb() ((void)atomic_fetch_add_explicit(&sx_tsan_fence_word, 0, memory_order_acq_rel))
#define sx_wmb() ((void)atomic_fetch_add_explicit(&sx_tsan_fence_word, 0, memory_order_acq_rel))
#else
/* Full barrier: orders earlier loads and stores against later loads and stores. */
#define sx_mb()  atomic_thread_fence(memory_order_seq_cst)
/* Read barrier: earlier loads complete before later loads. */
#define sx_rmb() atomic_thread_fence(memory_order_acquire)
/* Write barrier: earlier stores are visible before later stores. */
#define sx_wmb() atomic_thread_fence(memory_order_release)
#endif

#if !defined(__XEN_TOOLS__) && !defined(__XEN_INTERFACE_VERSION__)
#error "build with -D__XEN_TOOLS__: <xen/io/ring.h> would replace these barriers otherwise"
#endif
#define xen_mb()  sx_mb()
#define xen_rmb() sx_rmb()
#define xen_wmb() sx_wmb()

/* Single-copy-atomic access to a shared index another domain writes (no tearing, no caching). */
#define SX_READ_ONCE(x)     atomic_load_explicit((_Atomic __typeof__(x) *)&(x), memory_order_relaxed)
#define SX_WRITE_ONCE(x, v) atomic_store_explicit((_Atomic __typeof__(x) *)&(x), (v), memory_order_relaxed)

/* Compiler-only barrier, for spin loops. */
#define sx_barrier() atomic_signal_fence(memory_order_seq_cst)

static inline void sx_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    sx_barrier();
#endif
}

#endif

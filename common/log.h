/* splitxen logging: one macro, a module prefix, rate limiting where a guest can trigger it. */
#ifndef SPLITXEN_LOG_H
#define SPLITXEN_LOG_H

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum sx_log_level { SX_LOG_ERR = 0, SX_LOG_WARN = 1, SX_LOG_INFO = 2, SX_LOG_DEBUG = 3 };

/* Current threshold; set from SPLITXEN_LOG (err|warn|info|debug) on first use. */
int sx_log_threshold(void);
void sx_log_emit(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifndef SX_LOG_MODULE
#define SX_LOG_MODULE "splitxen"
#endif

#define sx_log(level, fmt, ...)                                                   \
    do {                                                                          \
        if ((level) <= sx_log_threshold())                                        \
            sx_log_emit((level), SX_LOG_MODULE, fmt, ##__VA_ARGS__);             \
    } while (0)

#define sx_err(fmt, ...)   sx_log(SX_LOG_ERR, fmt, ##__VA_ARGS__)
#define sx_warn(fmt, ...)  sx_log(SX_LOG_WARN, fmt, ##__VA_ARGS__)
#define sx_info(fmt, ...)  sx_log(SX_LOG_INFO, fmt, ##__VA_ARGS__)
#define sx_debug(fmt, ...) sx_log(SX_LOG_DEBUG, fmt, ##__VA_ARGS__)

/* At most 10 messages a second from one call site; for anything a guest can provoke. */
#define sx_log_ratelimited(level, fmt, ...)                                       \
    do {                                                                          \
        static _Atomic long sx_rl_sec_;                                           \
        static _Atomic int sx_rl_n_;                                              \
        long sx_now_ = (long)time(NULL);                                          \
        if (atomic_exchange(&sx_rl_sec_, sx_now_) != sx_now_)                     \
            atomic_store(&sx_rl_n_, 0);                                           \
        if (atomic_fetch_add(&sx_rl_n_, 1) < 10)                                  \
            sx_log(level, fmt, ##__VA_ARGS__);                                    \
    } while (0)

#endif

#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int threshold = -1;

int sx_log_threshold(void)
{
    int t = atomic_load_explicit(&threshold, memory_order_relaxed);
    if (t >= 0)
        return t;
    const char *e = getenv("SPLITXEN_LOG");
    t = SX_LOG_WARN;
    if (e) {
        if (!strcmp(e, "err")) t = SX_LOG_ERR;
        else if (!strcmp(e, "warn")) t = SX_LOG_WARN;
        else if (!strcmp(e, "info")) t = SX_LOG_INFO;
        else if (!strcmp(e, "debug")) t = SX_LOG_DEBUG;
    }
    atomic_store(&threshold, t);
    return t;
}

void sx_log_emit(int level, const char *module, const char *fmt, ...)
{
    static const char *names[] = { "error", "warning", "info", "debug" };
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s[%d]: %s: ", module, (int)getpid(),
                     names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(buf))
        n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf) - 1)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    /* One write so lines from several threads and processes do not interleave. */
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}

#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic int threshold = -1;

/* 1 when stderr is the journal's stream (systemd sets $JOURNAL_STREAM to its device:inode):
 * lines then start with <N>, the syslog priority journald files them under (sd-daemon(3)). */
static _Atomic int to_journal = -1;

static int stderr_is_journal(void)
{
    int j = atomic_load_explicit(&to_journal, memory_order_relaxed);
    if (j >= 0)
        return j;
    j = 0;
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
        j = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    atomic_store(&to_journal, j);
    return j;
}

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
    static const int prio[] = { 3, 4, 6, 7 };   /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    int l = level < 0 ? 0 : level > 3 ? 3 : level;
    char buf[1024];
    int n = stderr_is_journal()
                ? snprintf(buf, sizeof(buf), "<%d>%s: %s: ", prio[l], module, names[l])
                : snprintf(buf, sizeof(buf), "%s[%d]: %s: ", module, (int)getpid(), names[l]);
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

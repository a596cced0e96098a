#include "parse.h"

#include <errno.h>
#include <stdlib.h>

int sx_parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || s[0] < '0' || s[0] > '9')   /* strtoul would accept a sign or spaces */
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

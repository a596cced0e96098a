/* Strict number parsing for command lines and config values. */
#ifndef SPLITXEN_PARSE_H
#define SPLITXEN_PARSE_H

/* A whole decimal string ("12", not "", "-1", "1x", " 3", "99999999999999999999") no larger
 * than max. Returns 0 and *out, or -EINVAL. */
int sx_parse_ulong(const char *s, unsigned long max, unsigned long *out);

#endif

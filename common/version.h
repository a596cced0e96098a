/* splitxen's release version, from debian/changelog's first entry (the one place it is kept). */
#ifndef SPLITXEN_VERSION_H
#define SPLITXEN_VERSION_H

#include <stdio.h>

extern const char sx_version[];

/* What every program prints for --version: "PROGRAM VERSION" on stdout. Returns 0. */
int sx_print_version(const char *prog);

#endif

#include "version.h"

/* SPLITXEN_VERSION comes from the Makefile, which reads it from debian/changelog. */
#ifndef SPLITXEN_VERSION
#error "SPLITXEN_VERSION is set by the Makefile (common/module.mk)"
#endif

const char sx_version[] = SPLITXEN_VERSION;

int sx_print_version(const char *prog)
{
    printf("%s %s\n", prog, sx_version);
    return 0;
}

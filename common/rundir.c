#include "rundir.h"

#include <stdlib.h>

const char *sx_run_dir(void)
{
    const char *e = getenv("SPLITXEN_RUN");
    return e && *e ? e : "/run/splitxen";
}

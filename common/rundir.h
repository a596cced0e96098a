/* Where splitxen's processes keep their sockets, stats files and logs. */
#ifndef SPLITXEN_RUNDIR_H
#define SPLITXEN_RUNDIR_H

/* $SPLITXEN_RUN, or /run/splitxen when it is unset or empty. */
const char *sx_run_dir(void);

#endif

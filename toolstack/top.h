#ifndef SPLITXEN_TOOLSTACK_TOP_H
#define SPLITXEN_TOOLSTACK_TOP_H
/* `splitxen top`: argv[0] is "top". Returns the process exit status. */
int sx_cmd_top(int argc, char **argv);
#endif

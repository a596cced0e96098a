LIBS += sxcommon
sxcommon_SRCS := common/log.c

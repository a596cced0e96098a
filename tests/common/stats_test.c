/* Stats files: a writer's counters are visible to a reader mapping the file; removal. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stats.h"
#include "tests/sxtest.h"

static char dir[64];

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sx-stats-%d", (int)getpid());
    setenv("SPLITXEN_RUN", dir, 1);
    return mkdir(dir, 0755) == 0 ? 0 : 1;
}

static int teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static void test_reader_sees_writer_counters_across_processes(void)
{
    static const char *const names[] = { "requests", "sectors", "errors", NULL };
    struct sx_stats w, r;
    CU_ASSERT_EQUAL_FATAL(sx_stats_create(&w, "vbd", 3, 51712, names), 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 1000; i++)
            sx_stats_add(&w, 0, 1);
        sx_stats_add(&w, 1, 8000);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/stats/vbd-3-51712", dir);
    CU_ASSERT_EQUAL_FATAL(sx_stats_open_ro(&r, path), 0);
    CU_ASSERT_EQUAL(sx_stats_get(&r, "requests"), 1000);
    CU_ASSERT_EQUAL(sx_stats_get(&r, "sectors"), 8000);
    CU_ASSERT_EQUAL(sx_stats_get(&r, "errors"), 0);
    CU_ASSERT_EQUAL(sx_stats_get(&r, "nope"), UINT64_MAX);
    CU_ASSERT_EQUAL(r.hdr->domid, 3);
    CU_ASSERT_STRING_EQUAL(r.hdr->kind, "vbd");
    sx_stats_close_ro(&r);
    sx_stats_destroy(&w);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    sx_stats_destroy(&w);   /* idempotent */
}

static void test_missing_run_dir_is_created(void)
{
    static const char *const names[] = { "x", NULL };
    char run[128], path[256];
    snprintf(run, sizeof(run), "%s/not/yet/there", dir);
    setenv("SPLITXEN_RUN", run, 1);
    struct sx_stats w;
    CU_ASSERT_EQUAL(sx_stats_create(&w, "vif", 1, 0, names), 0);
    snprintf(path, sizeof(path), "%s/stats/vif-1-0", run);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    sx_stats_destroy(&w);
    setenv("SPLITXEN_RUN", dir, 1);
}

static void test_garbage_file_is_rejected(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/garbage", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not a stats file", f);
    fclose(f);
    struct sx_stats r;
    CU_ASSERT_EQUAL(sx_stats_open_ro(&r, path), -EINVAL);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_reader_sees_writer_counters_across_processes),
    SX_TEST(test_missing_run_dir_is_created),
    SX_TEST(test_garbage_file_is_rejected),
};

SX_TEST_MAIN("stats", cases, setup, teardown)

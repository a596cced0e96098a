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

/* Gauges are typed in the file, invisible to name lookups; counters stay untyped. */
static void test_gauges_are_typed_and_keep_their_names(void)
{
    static const char *const names[] = { "requests", "in_flight", "queues", NULL };
    static const char *const gauges[] = { "in_flight", "queues", NULL };
    struct sx_stats w, r;
    CU_ASSERT_EQUAL_FATAL(sx_stats_create_with_gauges(&w, "vbd", 4, 768, names, gauges), 0);
    sx_stats_set(&w, 1, 7);
    char path[256];
    snprintf(path, sizeof(path), "%s/stats/vbd-4-768", dir);
    CU_ASSERT_EQUAL_FATAL(sx_stats_open_ro(&r, path), 0);
    CU_ASSERT_FALSE(sx_stats_is_gauge(r.hdr, 0));
    CU_ASSERT_TRUE(sx_stats_is_gauge(r.hdr, 1));
    CU_ASSERT_TRUE(sx_stats_is_gauge(r.hdr, 2));
    CU_ASSERT_STRING_EQUAL(r.hdr->names[1], "in_flight");
    CU_ASSERT_EQUAL(sx_stats_get(&r, "in_flight"), 7);
    sx_stats_close_ro(&r);
    sx_stats_destroy(&w);
}

/* A gauge that is not one of the names, or too long to leave room for the type byte, is
 * refused before any file exists. */
static void test_bad_gauge_list_is_refused(void)
{
    static const char *const names[] = { "requests", "a_name_of_twenty_three_", NULL };
    static const char *const unknown[] = { "nope", NULL };
    static const char *const too_long[] = { "a_name_of_twenty_three_", NULL };
    struct sx_stats w;
    char path[256];
    snprintf(path, sizeof(path), "%s/stats/vbd-4-769", dir);
    CU_ASSERT_EQUAL(sx_stats_create_with_gauges(&w, "vbd", 4, 769, names, unknown), -EINVAL);
    CU_ASSERT_EQUAL(sx_stats_create_with_gauges(&w, "vbd", 4, 769, names, too_long), -EINVAL);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_gauges_are_typed_and_keep_their_names),
    SX_TEST(test_bad_gauge_list_is_refused),
    SX_TEST(test_reader_sees_writer_counters_across_processes),
    SX_TEST(test_missing_run_dir_is_created),
    SX_TEST(test_garbage_file_is_rejected),
};

SX_TEST_MAIN("stats", cases, setup, teardown)

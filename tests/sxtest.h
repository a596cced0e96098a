/*
 * Shared CUnit scaffolding. A test program defines its suites with SX_TEST_MAIN, runs them in
 * basic mode and exits non-zero when anything failed. Exit 77 means skipped: call
 * sx_test_skip("reason") before any suite runs.
 */
#ifndef SPLITXEN_SXTEST_H
#define SPLITXEN_SXTEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

struct sx_test_case {
    const char *name;
    void (*fn)(void);
};

#define SX_TEST(fn) { #fn, fn }

static inline void sx_test_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    fflush(stdout);
    exit(77);
}

/* Run every suite in the registry (set up by the caller, or by sx_test_run), clean it up:
 * 0 all passed, 1 something failed, 3 nothing ran. */
static inline int sx_test_run_registry(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0)
        return 3;
    return failed ? 1 : 0;
}

static inline int sx_test_run(const char *suite, const struct sx_test_case *cases, size_t n,
                              int (*init)(void), int (*clean)(void))
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, init, clean);
    if (!s)
        return 2;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, cases[i].name, cases[i].fn))
            return 2;
    return sx_test_run_registry();
}

/* SX_TEST_MAIN("suite", cases, init, clean) */
#define SX_TEST_MAIN(suite, cases, init, clean)                                  \
    int main(void)                                                               \
    {                                                                            \
        return sx_test_run(suite, cases, sizeof(cases) / sizeof(cases[0]), init, clean); \
    }

#endif

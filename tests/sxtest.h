/*
 * Shared CUnit scaffolding. A test program defines its suite with SX_TEST_MAIN (several with
 * CU_add_suite, sx_test_add_cases and sx_test_run_registry), runs them in basic mode and exits
 * non-zero when anything failed. Exit 77 means skipped: call
 * sx_test_skip("reason") before any suite runs. $SX_TEST_ONLY (a comma-separated list of case
 * names) runs only those cases, in the order given: a case that passes alone does not lean on
 * another one having run.
 */
#ifndef SPLITXEN_SXTEST_H
#define SPLITXEN_SXTEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Add the cases to run to suite s: every one of cases[n] in order or, with $SX_TEST_ONLY set,
 * those it names in its order. With s NULL, only count them. How many, or -1 when CUnit could
 * not add one (a name listed twice, no memory). */
static inline int sx_test_add_cases(CU_pSuite s, const struct sx_test_case *cases, size_t n)
{
    int added = 0;
    const char *only = getenv("SX_TEST_ONLY");
    if (only && *only) {
        for (const char *p = only; *p;) {
            size_t len = strcspn(p, ",");
            for (size_t i = 0; i < n; i++)
                if (strlen(cases[i].name) == len && !strncmp(cases[i].name, p, len)) {
                    if (s && !CU_add_test(s, cases[i].name, cases[i].fn))
                        return -1;
                    added++;
                }
            p += len + (p[len] == ',');
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s && !CU_add_test(s, cases[i].name, cases[i].fn))
                return -1;
            added++;
        }
    }
    return added;
}

static inline int sx_test_run(const char *suite, const struct sx_test_case *cases, size_t n,
                              int (*init)(void), int (*clean)(void))
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, init, clean);
    if (!s || sx_test_add_cases(s, cases, n) < 0)
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

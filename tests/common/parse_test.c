/* sx_parse_ulong: whole decimal strings only, bounded. */
#include <errno.h>

#include "parse.h"
#include "tests/sxtest.h"

static void test_accepts_whole_decimal_numbers_up_to_max(void)
{
    unsigned long v = 0;
    CU_ASSERT_EQUAL(sx_parse_ulong("0", 10, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(sx_parse_ulong("10", 10, &v), 0);
    CU_ASSERT_EQUAL(v, 10);
    CU_ASSERT_EQUAL(sx_parse_ulong("007", 10, &v), 0);
    CU_ASSERT_EQUAL(v, 7);
}

static void test_rejects_signs_spaces_garbage_overflow_and_too_large(void)
{
    unsigned long v = 42;
    const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "11",
                          "99999999999999999999999", NULL };
    for (int i = 0; bad[i]; i++) {
        CU_ASSERT_EQUAL(sx_parse_ulong(bad[i], 10, &v), -EINVAL);
        CU_ASSERT_EQUAL(v, 42);   /* untouched on failure */
    }
    CU_ASSERT_EQUAL(sx_parse_ulong(NULL, 10, &v), -EINVAL);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_accepts_whole_decimal_numbers_up_to_max),
    SX_TEST(test_rejects_signs_spaces_garbage_overflow_and_too_large),
};

SX_TEST_MAIN("parse", cases, NULL, NULL)

#include "tests/sxtest.h"
static void test_placeholder(void) { }
static const struct sx_test_case cases[] = { SX_TEST(test_placeholder) };
SX_TEST_MAIN("torture", cases, NULL, NULL)

/* test_hooks.h - deterministic pause points for tests (no timing in tests): when the
 * environment variable AUDIOCLASS_TEST_HOLD_DIR names a directory, test_hold("decode") waits
 * while the file DIR/decode exists, so a test can keep a decode "in progress" for as long as
 * it needs and release it by deleting the file. Without the variable (production) every
 * call returns at once after one cached check. Thread-safe. */
#ifndef AC_TEST_HOOKS_H
#define AC_TEST_HOOKS_H

/* Points: "decode" (a decode task, before decoding), "dispatch" (the scheduler's dispatcher,
 * before it takes a batch). */
void test_hold(const char *point);

#endif

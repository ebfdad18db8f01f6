/* The C tests' checks: CHECK and CHECK_STATUS count and report failures (the test exits 1 at the
 * end if any failed, so one run shows them all), name_for gives channel names unique to the
 * process and call, contains looks for a part of a message. C11; included by one file per test. */
#ifndef SHMRING_TESTS_C_CHECK_H_
#define SHMRING_TESTS_C_CHECK_H_

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shmring/shmring.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    ++checks;                                                                             \
    if (!(cond)) {                                                                        \
      ++failures;                                                                         \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
              shmring_last_error());                                                      \
    }                                                                                     \
  } while (0)
#define CHECK_STATUS(call, want) CHECK_STATUS_IMPL((call), (want), #call, __LINE__)

static void CHECK_STATUS_IMPL(shmring_status_t got, shmring_status_t want, const char* what, int line) {
  ++checks;
  if (got != want) {
    ++failures;
    fprintf(stderr, "%s:%d: %s returned %s (%d), want %s (last error: %s)\n", __FILE__, line, what,
            shmring_status_string(got), (int)got, shmring_status_string(want), shmring_last_error());
  }
}

#define MS 1000000LL

/* A channel name unique to this process and call. */
static const char* name_for(const char* what) {
  static char names[64][96];
  static int next = 0;
  char* name = names[next++ % 64];
  snprintf(name, sizeof names[0], "t_c_api.%s.%d.%d", what, (int)getpid(), next);
  return name;
}

static int contains(const char* text, const char* part) { return strstr(text, part) != NULL; }

#endif /* SHMRING_TESTS_C_CHECK_H_ */

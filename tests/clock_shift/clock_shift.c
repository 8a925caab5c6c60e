/* A test helper, preloaded into httpd (LD_PRELOAD): shifts the wall clock
 * (CLOCK_REALTIME and its coarse variant, gettimeofday, time) by an offset
 * in seconds read from the file named by DEPLOY_CLOCK_SHIFT_FILE, so that a
 * test can step the clock of a running httpd and of every process it forks,
 * backwards or forwards, by rewriting that file. The monotonic clocks
 * (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...) are left alone.
 *
 * The file is mapped once, when the library is loaded (in httpd's parent,
 * before it forks and drops privileges), and read at every call: it holds a
 * decimal number of seconds, e.g. "-60.000000", rewritten in place. A
 * process started without the variable, or without the file, is not
 * shifted. Programs exec'd with a clean environment (the runner launcher)
 * run unshifted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SHIFT_TEXT_MAX 63

typedef int (*clock_gettime_fn)(clockid_t, struct timespec*);

static clock_gettime_fn real_clock_gettime;
static const volatile char* shift_text; /* the mapped file, or NULL */

__attribute__((constructor)) static void clock_shift_init(void) {
  real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  const char* path = getenv("DEPLOY_CLOCK_SHIFT_FILE");
  if (path == NULL || *path == '\0') return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  void* map = mmap(NULL, SHIFT_TEXT_MAX, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map != MAP_FAILED) shift_text = map;
}

/* The offset now, in nanoseconds. */
static long long shift_nanos(void) {
  if (shift_text == NULL) return 0;
  char text[SHIFT_TEXT_MAX + 1];
  size_t n = 0;
  while (n < SHIFT_TEXT_MAX && shift_text[n] != '\0' && shift_text[n] != '\n') {
    text[n] = shift_text[n];
    ++n;
  }
  text[n] = '\0';
  return (long long)(strtod(text, NULL) * 1e9);
}

static int is_wall_clock(clockid_t clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE;
}

static int read_real(clockid_t clock, struct timespec* ts) {
  if (real_clock_gettime == NULL)
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  return real_clock_gettime(clock, ts);
}

int clock_gettime(clockid_t clock, struct timespec* ts) {
  int rc = read_real(clock, ts);
  if (rc != 0 || !is_wall_clock(clock)) return rc;
  long long nanos = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + shift_nanos();
  ts->tv_sec = (time_t)(nanos / 1000000000LL);
  ts->tv_nsec = (long)(nanos % 1000000000LL);
  if (ts->tv_nsec < 0) {
    ts->tv_nsec += 1000000000L;
    ts->tv_sec -= 1;
  }
  return 0;
}

/* glibc declares tv nonnull; a caller may still pass NULL. */
#pragma GCC diagnostic ignored "-Wnonnull-compare"
int gettimeofday(struct timeval* tv, void* tz) {
  (void)tz;
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  if (tv != NULL) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return 0;
}

time_t time(time_t* out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}

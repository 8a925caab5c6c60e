/* The floor scripts/bench compares mod_deploy's end-to-end job rate with: a
 * bare loop that forks, execs and waits for a program, N times, keeping at
 * most P children at once (P = DeployMaxRunning of the bench), with the
 * same argv and a clean environment like a job's. Nothing else: no log, no
 * table, no HTTP.
 *
 * Usage: bench-forkexec N P PROGRAM [ARG...]
 * Prints: "runs N parallel P seconds S per_second R failed F".
 * Compiled by scripts/bench with `cc -O2`. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s N P PROGRAM [ARG...]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]);
  long p = atol(argv[2]);
  if (n < 1 || p < 1) return 2;
  char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "LANG=C.UTF-8", NULL};
  long started = 0, running = 0, failed = 0;
  double t0 = now();
  while (started < n || running > 0) {
    while (started < n && running < p) {
      pid_t pid = fork();
      if (pid < 0) {
        perror("fork");
        return 1;
      }
      if (pid == 0) {
        execve(argv[3], argv + 3, envp);
        _exit(127);
      }
      ++started;
      ++running;
    }
    int status;
    if (wait(&status) > 0) {
      --running;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
  }
  double seconds = now() - t0;
  printf("runs %ld parallel %ld seconds %.6f per_second %.1f failed %ld\n", n, p, seconds,
         (double)n / seconds, failed);
  return failed ? 1 : 0;
}

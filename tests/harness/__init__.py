"""The one test harness of mod_deploy, used by the integration tests (tests/integration),
the load test (scripts/loadtest), the bench (scripts/bench) and the valgrind run
(scripts/valgrind-check).

  httpd_env     a real httpd per test from a generated config (HttpdEnv), HTTP client,
                config blocks, gates for jobs, /proc readers
  event_stream  a text/event-stream client and parser (EventStream, parse_event_lines)
  processes     process trees of one httpd: workers, the scheduler, runners, jobs, memory
  status        the ?auto answer of the deploy handler, parsed
  loop_image    a small ext4 image on a loop device (full-disk tests)

Import it with tests/ on sys.path: `from harness.httpd_env import HttpdEnv`.
"""

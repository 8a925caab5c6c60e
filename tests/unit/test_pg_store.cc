// The `postgresql` engine of the job store (core/pg_store.h).
//
// Always: a server that cannot be reached is kStoreUnavailable, and the
// message names no CONNINFO. With DEPLOY_TEST_PG_CONNINFO set (the ctest
// entry test_pg_store_with_server starts a throwaway server for it, through
// tests/unit/with-postgres), also the conformance suite
// (job_store_conformance.h), unchanged, each test on a fresh schema, and
// what only this engine has: its schema version, leases on the database's
// clock, ids and fences across nodes.
#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "job_table.h"  // process_start_ticks, which the suite uses
#include "job_store_conformance.h"
#include "pg_store.h"
#include "scheduler.h"

namespace {

using deploy::Instant;
using deploy::Job;
using deploy::JobState;
using deploy::JobStore;
using deploy::PgStore;
using deploy::Status;
using deploy::SubmissionDecision;
using deploy::conformance::code_of;
using deploy::conformance::submission;

constexpr deploy::Micros kLease = 30000000;

std::string conninfo() {
  const char* c = getenv("DEPLOY_TEST_PG_CONNINFO");
  return c ? c : "";
}

// Runs `sql` on a connection of its own; fails the test on an error.
void run_sql(const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo().c_str());
  ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(conn));
  PGresult* r = PQexec(conn, sql.c_str());
  ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                "%s: %s", sql.c_str(), PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(conn);
}

// A fresh schema: every table of the store dropped (PgStore creates them
// again on its first call).
void drop_schema() {
  run_sql(
      "SET client_min_messages = warning; DROP TABLE IF EXISTS deploy_output, deploy_jobs, "
      "deploy_counters, deploy_meta, deploy_schema_version, deploy_notifications CASCADE");
}

void create(uint32_t) { drop_schema(); }
std::unique_ptr<JobStore> attach() {
  return std::make_unique<PgStore>(conninfo(), "node-a", kLease);
}

// A port of 127.0.0.1 that nothing listens on: bound, then closed.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

START_TEST(an_unreachable_server_is_store_unavailable_and_never_shown) {
  const std::string secret = "password=hunter2-secret";
  PgStore store("host=127.0.0.1 port=" + std::to_string(closed_port()) +
                    " dbname=deploy user=deploy connect_timeout=2 " + secret,
                "node-a", kLease);
  deploy::SubmitResult r;
  const Status st = store.submit(submission("web"), Instant::now(), &r);
  ASSERT_TEXT_EQ(code_of(st), deploy::kStoreUnavailable);
  ck_assert(st.message().find("hunter2") == std::string::npos);
  Job out;
  ASSERT_TEXT_EQ(code_of(store.get(1, &out)), deploy::kStoreUnavailable);
  // A wait with no server ends at its timeout, false.
  ck_assert(!store.wait_for_change(store.change_seq(), 300000));
}
END_TEST

void set_up_pg() {
  drop_schema();
  deploy::conformance::g_store = attach();
}
void tear_down_pg() {
  deploy::conformance::g_store.reset();
  drop_schema();
}

START_TEST(the_schema_is_created_once_with_its_version) {
  auto& store = *deploy::conformance::g_store;
  ck_assert_uint_eq(store.change_seq(), 0);
  auto other = attach();  // a second node starting: the schema is there
  deploy::SubmitResult r;
  ASSERT_OK(other->submit(submission("web"), Instant::now(), &r));
  PGconn* conn = PQconnectdb(conninfo().c_str());
  PGresult* res = PQexec(conn, "SELECT count(*), max(version) FROM deploy_schema_version");
  ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
  ASSERT_TEXT_EQ(PQgetvalue(res, 0, 0), "1");
  ASSERT_TEXT_EQ(PQgetvalue(res, 0, 1), std::to_string(PgStore::kSchemaVersion));
  PQclear(res);
  PQfinish(conn);
}
END_TEST

// Node b's runner cannot write node a's job; an expired lease makes it
// lost, and its runner's finish after that is refused; a finish before is
// kept by detect_lost.
START_TEST(leases_and_fences_across_nodes) {
  PgStore a(conninfo(), "node-a", 1000000), b(conninfo(), "node-b", 1000000);
  const Job one = deploy::conformance::started(a, deploy::conformance::submit_new(a, "web"));
  const deploy::RunnerRef runner{12345, 777};
  ASSERT_OK(a.runner_recorded(one.id, runner, 0, 0, nullptr));
  bool cancel = false;
  ASSERT_TEXT_EQ(
      code_of(b.record_progress(one.id, runner, deploy::conformance::report(10), 0, &cancel)),
      deploy::kNotOwner);
  std::vector<deploy::LostJob> ended;
  ASSERT_OK(b.detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 0);  // the lease holds
  usleep(1300000);
  ASSERT_OK(b.detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 1);
  ck_assert_int_eq(int(ended[0].job.state), int(JobState::lost));
  ASSERT_TEXT_EQ(code_of(a.finish(one.id, runner, deploy::Outcome{JobState::succeeded, 0, {}}, {},
                                  Instant::now(), 0)),
                 deploy::kNotOwner);
  // A heartbeat renews the lease: a job that reports is not lost.
  const Job two = deploy::conformance::started(a, deploy::conformance::submit_new(a, "web"));
  ASSERT_OK(a.runner_recorded(two.id, runner, 0, 0, nullptr));
  for (int i = 0; i < 4; ++i) {
    usleep(400000);
    ASSERT_OK(a.record_progress(two.id, runner, deploy::conformance::report(i), 0, &cancel));
  }
  ended.clear();
  ASSERT_OK(b.detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 0);
  ASSERT_OK(
      a.finish(two.id, runner, deploy::Outcome{JobState::succeeded, 0, {}}, {}, Instant::now(), 0));
  usleep(1300000);
  ASSERT_OK(b.detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 0);  // a finished job is never rescued
  Job out;
  ASSERT_OK(b.get(two.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::succeeded));
}
END_TEST

// DeployMaxRunning is each node's, DeployConcurrency the cluster's.
START_TEST(each_node_runs_its_own_share_within_the_clusters_concurrency) {
  PgStore a(conninfo(), "node-a", kLease), b(conninfo(), "node-b", kLease);
  std::map<std::string, deploy::TargetPolicy> policies;
  policies["web"].concurrency = 2;
  deploy::Limits limits;
  limits.max_running = 1;
  for (int i = 0; i < 4; ++i) deploy::conformance::submit_new(a, "web");
  const auto pass = [&](PgStore& node) {
    deploy::ScheduleDecision d;
    std::vector<Job> started;
    ASSERT_OK(node.schedule_pass(
        nullptr,
        [&](const std::vector<deploy::PendingJob>& jobs) {
          return deploy::schedule(jobs, policies, limits, deploy::mono_now());
        },
        Instant::now(), &d, &started, nullptr));
    return started.size();
  };
  ck_assert_uint_eq(pass(a), 1);
  ck_assert_uint_eq(pass(a), 0);  // node a is full
  ck_assert_uint_eq(pass(b), 1);
  policies["web"].concurrency = 3;
  ck_assert_uint_eq(pass(b), 0);  // node b too
  limits.max_running = 5;
  ck_assert_uint_eq(pass(a), 1);  // the cluster's 3
  ck_assert_uint_eq(pass(b), 0);
}
END_TEST

// Threads of one process waiting at once all wake at a change of another
// store, within the second of the fallback poll at most.
START_TEST(every_waiting_thread_wakes_at_a_change) {
  auto& store = *deploy::conformance::g_store;
  const uint64_t seen = store.change_seq();
  std::atomic<int> woke{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      if (store.wait_for_change(seen, 10000000)) ++woke;
    });
  usleep(200000);
  const deploy::Micros before = deploy::mono_now();
  auto other = attach();
  deploy::conformance::submit_new(*other, "web");
  for (auto& t : threads) t.join();
  ck_assert_int_eq(woke.load(), 4);
  ck_assert_int_lt(deploy::mono_now() - before, 2000000);
}
END_TEST

// The threads of one process that submit while another submission waits
// are decided together next (group commit), each decision seeing the ones
// before it: the triggers of a target with a quiet window create one job and
// join it, and the queue limit admits exactly its number of jobs. Another
// connection holds the transition lock meanwhile, so that the threads'
// submissions queue up behind the first.
START_TEST(submissions_decided_together_are_exact) {
  auto& store = *deploy::conformance::g_store;
  (void)store.change_seq();  // connected, the schema made
  constexpr int kThreads = 7;
  std::atomic<int> errors{0};
  const auto together = [&](const std::string& first, const std::string& target,
                            deploy::Micros quiet, uint32_t limit) {
    PGconn* blocker = PQconnectdb(conninfo().c_str());
    // PgStore's kTransitionLock ("deploy" in ASCII).
    PGresult* r = PQexec(blocker, "BEGIN; SELECT pg_advisory_xact_lock(110386840629113)");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    const auto submit = [&](const std::string& t, deploy::Micros q, uint32_t l) {
      deploy::SubmitResult result;
      if (!store.submit(submission(t, q, l), Instant::now(), &result).is_ok()) ++errors;
    };
    std::vector<std::thread> threads;
    threads.emplace_back(submit, first, 0, 1000);  // waits for the lock
    usleep(200000);
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(submit, target, quiet, limit);
    usleep(300000);
    PQclear(PQexec(blocker, "COMMIT"));
    PQfinish(blocker);
    for (auto& th : threads) th.join();
    ck_assert_int_eq(errors.load(), 0);
  };
  together("first", "joined", 3600000000, 1000);
  deploy::StoreCounters c;
  ASSERT_OK(store.counters(&c));
  ck_assert_uint_eq(c.unfinished.size(), 2);  // first, joined
  ck_assert_str_eq(c.unfinished[1].target.c_str(), "joined");
  ck_assert_uint_eq(c.unfinished[1].requests, kThreads);
  ck_assert_uint_eq(c.counters.accepted, 2);
  ck_assert_uint_eq(c.counters.coalesced, kThreads - 1);
  // 3 pending with the second's: room for 3 more under a limit of 6.
  together("second", "limited", 0, 6);
  ASSERT_OK(store.counters(&c));
  ck_assert_uint_eq(c.unfinished.size(), 6);
  ck_assert_uint_eq(c.counters.accepted, 6);
  ck_assert_uint_eq(c.counters.rejected[uint8_t(deploy::Rejection::queue_full)], kThreads - 3);
}
END_TEST

// A join of a waiting job holds the transition lock shared (pg_store.h):
// it goes on while another join holds it, and waits while any other
// transition does; a new job waits for the joins.
START_TEST(joins_share_the_transition_lock_other_transitions_exclude_them) {
  auto& store = *deploy::conformance::g_store;
  constexpr deploy::Micros kHour = 3600000000;
  const Job waiting = deploy::conformance::submit_new(store, "storm", kHour);
  PGconn* other = PQconnectdb(conninfo().c_str());
  const auto hold = [&](const char* how) {
    PGresult* r = PQexec(
        other, (std::string("BEGIN; SELECT ") + how + "(110386840629113)")  // kTransitionLock
                   .c_str());
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
  };
  const auto release = [&] { PQclear(PQexec(other, "COMMIT")); };
  // Runs `submit` in a thread: whether it was done within 300 ms, and
  // (after `release`) its result.
  const auto submitted_at_once = [&](const deploy::NewSubmission& s, deploy::SubmitResult* result) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      ASSERT_OK(store.submit(s, Instant::now(), result));
      done = true;
    });
    usleep(300000);
    const bool at_once = done;
    release();
    t.join();
    return at_once;
  };
  deploy::SubmitResult joined, created, waited;
  hold("pg_advisory_xact_lock_shared");  // another join
  ck_assert(submitted_at_once(submission("storm", kHour), &joined));
  ck_assert_int_eq(int(joined.kind), int(SubmissionDecision::Kind::coalesce));
  ck_assert_uint_eq(joined.job.id, waiting.id);
  ck_assert_uint_eq(joined.job.requests, 2);
  hold("pg_advisory_xact_lock_shared");
  ck_assert(!submitted_at_once(submission("calm"), &created));
  ck_assert_int_eq(int(created.kind), int(SubmissionDecision::Kind::new_job));
  hold("pg_advisory_xact_lock");  // any other transition
  ck_assert(!submitted_at_once(submission("storm", kHour), &waited));
  ck_assert_int_eq(int(waited.kind), int(SubmissionDecision::Kind::coalesce));
  ck_assert_uint_eq(waited.job.requests, 3);
  PQfinish(other);
}
END_TEST

// Runs `sql` on a connection of its own (a row written by someone else).
void exec_sql(const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo().c_str());
  PGresult* r = PQexec(c, sql.c_str());
  ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql.c_str(), PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

// A row is untrusted: what it holds out of a job's bounds reads back within
// them, and a state this build does not know reads as lost.
START_TEST(a_damaged_row_reads_back_within_a_jobs_bounds) {
  auto& store = *deploy::conformance::g_store;
  const Job j = deploy::conformance::submit_new(store, "web");
  exec_sql(
      "UPDATE deploy_jobs SET state = 42, progress = 5000, requests = -5, "
      "exit_code = 99999, signal = 0, started_at = -9223372036854775808, "
      "finished_at = 9223372036854775807, stage = repeat('s', 5000), "
      "target = repeat('t', 500), submitted_by = repeat('u', 5000), "
      "superseded_by = -3 WHERE id = " +
      std::to_string(j.id));
  Job got;
  ASSERT_OK(store.get(j.id, &got));
  ck_assert_int_eq(int(got.state), int(JobState::lost));
  ck_assert_int_eq(got.progress, -1);
  ck_assert_uint_eq(got.requests, 0);
  ck_assert(!got.exit_code && !got.signal);
  ck_assert_int_eq(got.started_at, 0);
  ck_assert_int_eq(got.finished_at, 0);
  ck_assert_uint_eq(got.stage->size(), deploy::kStageMax);
  ck_assert_uint_eq(got.target.size(), deploy::kTargetNameMax);
  ck_assert_uint_eq(got.submitted_by->size(), deploy::kUserMax);
  ck_assert_uint_eq(got.superseded_by, 0);
}
END_TEST

// A cancel signals the runner a row names only when it is that process
// (its pid and start time): a forged or reused pid is another process.
START_TEST(a_cancel_signals_only_the_process_the_row_names) {
  auto& store = *deploy::conformance::g_store;
  const Job j = deploy::conformance::started(store, deploy::conformance::submit_new(store, "web"));
  const std::string id = std::to_string(j.id), pid = std::to_string(getpid());
  exec_sql("UPDATE deploy_jobs SET runner_pid = " + pid +
           ", runner_ticks = 12345 WHERE id = " + id);
  Job after;
  deploy::RunnerRef nudge;
  ASSERT_OK(store.cancel(j.id, "alice", Instant::now(), &after, &nudge));
  ck_assert_int_eq(int(after.state), int(JobState::running));
  ck_assert_int_eq(nudge.runner_pid, 0);
  exec_sql("UPDATE deploy_jobs SET runner_ticks = " +
           std::to_string(deploy::process_start_ticks(getpid())) + " WHERE id = " + id);
  ASSERT_OK(store.cancel(j.id, "alice", Instant::now(), &after, &nudge));
  ck_assert_int_eq(nudge.runner_pid, getpid());
}
END_TEST

// `scripts/throwaway-postgres COMMAND DIR [PORT]` on the test's server.
void pg_ctl(const std::string& command) {
  const char* ctl = getenv("DEPLOY_TEST_PG_CTL");
  const char* dir = getenv("DEPLOY_TEST_PG_DIR");
  ck_assert(ctl && dir);
  std::string port = conninfo().substr(conninfo().find("port=") + 5);
  port = port.substr(0, port.find(' '));
  const std::string line =
      std::string(ctl) + " " + command + " " + dir + " " + port + " >/dev/null";
  ck_assert_int_eq(system(line.c_str()), 0);
}

// While the server is down: store_unavailable, the runner's output held;
// once it is back, the store reconnects on its own and the output is all
// there.
START_TEST(an_outage_is_store_unavailable_and_loses_no_output) {
  auto& store = *deploy::conformance::g_store;
  const Job a = deploy::conformance::started(store, deploy::conformance::submit_new(store, "web"));
  const deploy::RunnerRef me = deploy::conformance::self_runner();
  ASSERT_OK(store.runner_recorded(a.id, me, 0, 0, nullptr));
  std::unique_ptr<deploy::JobOutput> output;
  ASSERT_OK(store.open_output(a.id, me, &output));
  output->append("before\n");
  ASSERT_OK(output->flush());
  pg_ctl("stop");
  deploy::SubmitResult r;
  ASSERT_TEXT_EQ(code_of(store.submit(submission("web"), Instant::now(), &r)),
                 deploy::kStoreUnavailable);
  const std::string big(3 << 20, 'x');  // more than a chunk, tried while down
  output->append(big);
  output->append("during\n");
  ASSERT_TEXT_EQ(code_of(output->flush()), deploy::kStoreUnavailable);
  ck_assert(!output->incomplete());
  pg_ctl("start");
  ASSERT_OK(store.submit(submission("web"), Instant::now(), &r));
  ASSERT_OK(output->close());
  ck_assert(!output->incomplete());
  std::string read;
  ASSERT_OK(store.read_output(a.id, 0, 100, &read));
  ASSERT_TEXT_EQ(read, "before\n" + std::string(93, 'x'));
  ASSERT_OK(store.read_output(a.id, 7 + big.size(), 100, &read));
  ASSERT_TEXT_EQ(read, "during\n");
  ck_assert_uint_eq(output->size(), 7 + big.size() + 7);
}
END_TEST

Suite* pg_store_suite() {
  Suite* s = suite_create("pg_store");
  TCase* tc = tcase_create("unreachable");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, an_unreachable_server_is_store_unavailable_and_never_shown);
  suite_add_tcase(s, tc);
  if (conninfo().empty()) return s;
  TCase* server = deploy::test::case_with_fixture("server", set_up_pg, tear_down_pg, 60);
  tcase_add_test(server, the_schema_is_created_once_with_its_version);
  tcase_add_test(server, leases_and_fences_across_nodes);
  tcase_add_test(server, each_node_runs_its_own_share_within_the_clusters_concurrency);
  tcase_add_test(server, every_waiting_thread_wakes_at_a_change);
  tcase_add_test(server, submissions_decided_together_are_exact);
  tcase_add_test(server, joins_share_the_transition_lock_other_transitions_exclude_them);
  tcase_add_test(server, a_damaged_row_reads_back_within_a_jobs_bounds);
  tcase_add_test(server, a_cancel_signals_only_the_process_the_row_names);
  // Only on a server of its own (tests/unit/with-postgres), which it stops.
  if (getenv("DEPLOY_TEST_PG_CTL"))
    tcase_add_test(server, an_outage_is_store_unavailable_and_loses_no_output);
  suite_add_tcase(s, server);
  return s;
}

Suite* pg_conformance_suite() {
  if (conninfo().empty()) return suite_create("job store conformance: postgresql (no server)");
  deploy::conformance::g_factory = {create, attach, drop_schema};
  return deploy::conformance::suite("postgresql");
}

}  // namespace

DEPLOY_TEST_SUITE(pg_store_suite);
DEPLOY_TEST_SUITE(pg_conformance_suite);

// The `postgresql` engine of the job store (pg_store.h).
#include "pg_store.h"

#include <libpq-fe.h>
#include <endian.h>
#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <map>
#include <set>

#include "file_store.h"  // kRunnerSilenceLimit
#include "job_details.h"
#include "job_table.h"  // process_start_ticks

namespace deploy {
namespace {

// The key of pg_advisory_xact_lock that serializes every transition (and
// the creation of the schema): "deploy" in ASCII.
constexpr long long kTransitionLock = 0x6465706c6f79LL;

// The schema, version 1. Times are microseconds of the wall clock (Job's),
// except lease_expires, on the database's clock.
constexpr char kSchema[] = R"SQL(
CREATE TABLE IF NOT EXISTS deploy_schema_version (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS deploy_meta (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  change_no bigint NOT NULL,
  output_no bigint NOT NULL);
INSERT INTO deploy_meta VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS deploy_jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  target text NOT NULL,
  state smallint NOT NULL,
  params text NOT NULL,
  progress integer NOT NULL DEFAULT -1,
  stage text,
  requests integer NOT NULL DEFAULT 1,
  not_before bigint NOT NULL DEFAULT 0,
  submitted_by text,
  submitted_at bigint NOT NULL,
  started_at bigint NOT NULL DEFAULT 0,
  finished_at bigint NOT NULL DEFAULT 0,
  exit_code integer,
  signal integer,
  log_complete boolean NOT NULL DEFAULT true,
  log_size bigint NOT NULL DEFAULT 0,
  change_no bigint NOT NULL,
  node text,
  started_mono bigint NOT NULL DEFAULT 0,
  runner_pid integer NOT NULL DEFAULT 0,
  runner_ticks bigint NOT NULL DEFAULT 0,
  job_pid integer NOT NULL DEFAULT 0,
  lease_expires timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false);
CREATE INDEX IF NOT EXISTS deploy_jobs_unfinished ON deploy_jobs (id) WHERE state <= 3;
CREATE INDEX IF NOT EXISTS deploy_jobs_change ON deploy_jobs (change_no);
CREATE INDEX IF NOT EXISTS deploy_jobs_target ON deploy_jobs (target, id);
CREATE TABLE IF NOT EXISTS deploy_output (
  job_id bigint NOT NULL REFERENCES deploy_jobs (id) ON DELETE CASCADE,
  "offset" bigint NOT NULL,
  chunk bytea NOT NULL,
  PRIMARY KEY (job_id, "offset"));
CREATE TABLE IF NOT EXISTS deploy_counters (
  scope text NOT NULL,
  name text NOT NULL,
  value bigint NOT NULL,
  PRIMARY KEY (scope, name));
-- Version 2: cancels, supersede and idempotent submissions (issue 17).
ALTER TABLE deploy_jobs ADD COLUMN IF NOT EXISTS canceled_by text;
ALTER TABLE deploy_jobs ADD COLUMN IF NOT EXISTS superseded_by bigint NOT NULL DEFAULT 0;
ALTER TABLE deploy_jobs ADD COLUMN IF NOT EXISTS idempotency_key text;
CREATE INDEX IF NOT EXISTS deploy_jobs_idempotency ON deploy_jobs (target, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
-- Issue 16: the job's stages and outputs, in the text forms of
-- job_details.h (encode_stages, encode_outputs), read back as untrusted.
ALTER TABLE deploy_jobs ADD COLUMN IF NOT EXISTS stages text NOT NULL DEFAULT '';
ALTER TABLE deploy_jobs ADD COLUMN IF NOT EXISTS outputs text NOT NULL DEFAULT '';
-- Completion notifications (DeployNotify, core/notification.h): one row per
-- DeployNotify URL of the job's target (idx: its place in configuration
-- order), made with the job, pending (state 1) until delivered (2) or failed
-- (3). due: NULL while the job is unfinished, then when the next attempt is
-- due. claimed_by and claim_expires: the node whose deliverer holds it for
-- an attempt, and until when. Both times are on the database's clock, which
-- every node shares: one node makes each attempt.
CREATE TABLE IF NOT EXISTS deploy_notifications (
  job_id bigint NOT NULL REFERENCES deploy_jobs (id) ON DELETE CASCADE,
  idx smallint NOT NULL,
  state smallint NOT NULL DEFAULT 1,
  attempts integer NOT NULL DEFAULT 0,
  status integer,
  due timestamptz,
  claimed_by text,
  claim_expires timestamptz,
  PRIMARY KEY (job_id, idx));
CREATE INDEX IF NOT EXISTS deploy_notifications_due ON deploy_notifications (due)
  WHERE state = 1 AND due IS NOT NULL;
)SQL";

constexpr char kJobColumns[] =
    "id, target, state, params, progress, stage, requests, not_before, submitted_by, "
    "submitted_at, started_at, finished_at, exit_code, signal, log_complete, change_no, node, "
    "started_mono, runner_pid, runner_ticks, cancel_requested, canceled_by, superseded_by, "
    "stages, outputs, "
    // The job's notifications as "STATE:ATTEMPTS:STATUS" (-1: none), by idx.
    "(SELECT string_agg(n.state || ':' || n.attempts || ':' || COALESCE(n.status, -1), ',' "
    "ORDER BY n.idx) FROM deploy_notifications n WHERE n.job_id = deploy_jobs.id)";

using Param = std::optional<std::string>;

// The columns of kJobColumns: a query's own columns after them start here
// (load() reads kLoadColumns there).
constexpr int kJobColumnCount = 26;
constexpr char kLoadColumns[] = ", job_pid, log_size";

std::string num(int64_t v) { return std::to_string(v); }

// Params as one text: for each pair, "LEN:NAME" then "LEN:VALUE".
std::string encode_params(const Params& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    out += std::to_string(name.size()) + ":" + name;
    out += std::to_string(value.size()) + ":" + value;
  }
  return out;
}

bool decode_field(std::string_view& in, std::string* out) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
  size_t len = 0;
  for (char c : in.substr(0, colon)) {
    if (c < '0' || c > '9') return false;
    len = len * 10 + size_t(c - '0');
  }
  in.remove_prefix(colon + 1);
  if (len > in.size()) return false;
  *out = std::string(in.substr(0, len));
  in.remove_prefix(len);
  return true;
}

Params decode_params(std::string_view in) {
  Params params;
  std::string name, value;
  while (!in.empty() && decode_field(in, &name) && decode_field(in, &value))
    params.emplace_back(name, value);
  return params;
}

// The notifications of kJobColumns' last column; what does not read as
// one is left out (the text came from the database, still checked).
std::vector<Notification> decode_notifications(std::string_view in) {
  std::vector<Notification> out;
  while (!in.empty() && out.size() < kNotificationsMax) {
    const size_t end = std::min(in.find(','), in.size());
    const std::string entry(in.substr(0, end));
    in.remove_prefix(std::min(end + 1, in.size()));
    int state = 0, status = -1;
    unsigned attempts = 0;
    if (std::sscanf(entry.c_str(), "%d:%u:%d", &state, &attempts, &status) != 3 || state < 0 ||
        state > 255 || !is_valid_notification_state(uint8_t(state)))
      continue;
    Notification n{NotificationState(state), attempts, std::nullopt};
    if (status >= 0) n.status = status;
    out.push_back(n);
  }
  return out;
}

Status unavailable() {
  return Status::error("the PostgreSQL server of DeployStore cannot be reached", kStoreUnavailable);
}

}  // namespace

// One libpq connection. Connects with a bounded connect_timeout (the
// CONNINFO's own, if it has one, wins) and bounded statements.
class PgConnection {
 public:
  explicit PgConnection(const std::string& conninfo) {
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"5", "mod_deploy", conninfo.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!ok()) return;
    // Notices (a CREATE … IF NOT EXISTS that skips) are nobody's business:
    // libpq would write them to stderr, the error log of httpd.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    const std::string set =
        // No JIT: every statement is short, and a compilation (tens of
        // milliseconds, when a table without statistics yet makes a plan
        // look costly) would cost more than the statement.
        "SET client_min_messages = warning; SET jit = off; SET statement_timeout = " +
        num(PgStore::kStatementTimeoutMs) +
        "; SET lock_timeout = " + num(PgStore::kStatementTimeoutMs) +
        "; SET idle_in_transaction_session_timeout = " + num(4 * PgStore::kStatementTimeoutMs);
    PGresult* r = PQexec(conn_, set.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    PQclear(r);
  }
  ~PgConnection() {
    if (conn_) PQfinish(conn_);
  }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  bool ok() const { return conn_ && !broken_ && PQstatus(conn_) == CONNECTION_OK; }
  PGconn* get() const { return conn_; }
  // A pipeline whose results did not come as sent: the connection is
  // dropped, whatever libpq thinks of it.
  void set_broken() { broken_ = true; }
  // Whether the idle operations' connection is still good, without a round
  // trip: nothing is due from the server between two operations (this
  // connection LISTENs on nothing), so anything to read (the notice of a
  // server shutting down, the end of the stream) means it went stale.
  bool quiet() const {
    if (!ok() || PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }

  const Micros opened_at = mono_now();  // monotonic

  // The statements prepared on this connection (PQprepare), by their SQL
  // text: each transaction's are prepared once, then only bound and
  // executed. Bounded; past it a statement runs unnamed. A new connection
  // starts with none.
  static constexpr size_t kPreparedMax = 128;
  std::map<std::string, std::string> prepared;
  uint64_t statements_named = 0;

 private:
  PGconn* conn_ = nullptr;
  bool broken_ = false;
};

namespace {

// A result, freed with it.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  ~PgResult() {
    if (r_) PQclear(r_);
  }
  int rows() const { return r_ ? PQntuples(r_) : 0; }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col); }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), size_t(PQgetlength(r_, row, col)));
  }
  int64_t i64(int row, int col) const {
    return null(row, col) ? 0 : std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
  }
  PGresult* raw() const { return r_; }
  bool boolean(int row, int col) const {
    return !null(row, col) && PQgetvalue(r_, row, col)[0] == 't';
  }

 private:
  PGresult* r_ = nullptr;
};

// Anyone with the database's password can write a row: every value read
// back is brought into what a job can hold (job_record.h's bounds), so that
// no later arithmetic, listing or page meets a value it was not made for.
// A state this build does not know reads as lost: final, so nothing runs it
// or waits on it.
constexpr int64_t kWallTimeMax = 253402300799999999;  // 9999-12-31T23:59:59.999999Z
constexpr size_t kParamsTextMax = 64 * 1024;          // far above any submission's

int64_t time_in_range(int64_t t) { return t >= 0 && t <= kWallTimeMax ? t : 0; }

std::string bounded(std::string text, size_t max) {
  if (text.size() > max) text.resize(max);
  return text;
}

Job job_of(const PgResult& r, int row) {
  Job j;
  j.id = uint64_t(std::clamp<int64_t>(r.i64(row, 0), 0, int64_t(kMaxJobId)));
  j.target = bounded(r.text(row, 1), kTargetNameMax);
  const int64_t state = r.i64(row, 2);
  j.state =
      state > 0 && state < 256 && is_valid_state(uint8_t(state)) ? JobState(state) : JobState::lost;
  const std::string params = r.text(row, 3);
  if (params.size() <= kParamsTextMax) j.params = decode_params(params);
  const int64_t progress = r.i64(row, 4);
  j.progress = progress >= -1 && progress <= 100 ? int(progress) : -1;
  if (!r.null(row, 5)) j.stage = bounded(r.text(row, 5), kStageMax);
  j.requests = uint32_t(std::clamp<int64_t>(r.i64(row, 6), 0, UINT32_MAX));
  j.not_before = time_in_range(r.i64(row, 7));
  if (!r.null(row, 8)) j.submitted_by = bounded(r.text(row, 8), kUserMax);
  j.submitted_at = time_in_range(r.i64(row, 9));
  j.started_at = time_in_range(r.i64(row, 10));
  j.finished_at = time_in_range(r.i64(row, 11));
  const int64_t exit_code = r.i64(row, 12), signal = r.i64(row, 13);
  if (!r.null(row, 12) && exit_code >= 0 && exit_code <= 255) j.exit_code = int(exit_code);
  if (!r.null(row, 13) && signal > 0 && signal < 65) j.signal = int(signal);
  j.log_complete = r.boolean(row, 14);
  j.change_seq = uint64_t(std::max<int64_t>(r.i64(row, 15), 0));
  if (!r.null(row, 16))
    j.node = bounded(r.text(row, 16), kUserMax);  // the node that runs or ran it
  if (!r.null(row, 21)) j.canceled_by = bounded(r.text(row, 21), kUserMax);
  j.superseded_by = uint64_t(std::clamp<int64_t>(r.i64(row, 22), 0, int64_t(kMaxJobId)));
  decode_stages(r.text(row, 23), &j.stages);  // damaged: none
  decode_outputs(r.text(row, 24), &j.outputs);
  if (!r.null(row, 25)) j.notifications = decode_notifications(r.text(row, 25));
  return j;
}

std::vector<Job> jobs_of(const PgResult& r) {
  std::vector<Job> jobs;
  for (int i = 0; i < r.rows(); ++i) jobs.push_back(job_of(r, i));
  return jobs;
}

}  // namespace

// The statement that bumps the change number, as the first CTE `m` of a
// statement that changes a job: `(SELECT bumped FROM m)` is the new number.
constexpr char kBump[] =
    "WITH m AS (UPDATE deploy_meta SET change_no = change_no + 1, output_no = output_no + 1 "
    "RETURNING change_no AS bumped) ";

// The change number as a row `m` the planner knows to be one (deploy_meta
// may have no statistics yet): the left side of a LEFT JOIN LATERAL that
// reads jobs and the change number of one snapshot.
constexpr char kChangeRow[] = "(SELECT (SELECT change_no FROM deploy_meta) AS change_no) m";

// One transaction on the store's connection (or one statement of its own:
// PgStore::transact). Statements are queued and sent as one pipeline
// (libpq's pipeline mode) when a result is needed: run(), flush(), or the
// commit, which also takes what is queued. The server runs them in order,
// each after the one before, so queueing changes no statement's effect, only
// when an error is seen: at the next flush, which then fails and the
// transaction is rolled back. The statements are prepared once per
// connection (PgConnection::prepared).
class PgStore::Tx {
 public:
  Tx(PgConnection& conn, const std::string& node) : conn_(conn), node(node) {}

  // When its connection was opened (monotonic).
  Micros opened_at() const { return conn_.opened_at; }

  // Queues `sql` with text parameters ($1…); nullopt is NULL. Its result
  // goes to *out (when not null) at the next flush. `binary`: the result's
  // columns in binary (bytea as it is); `binary_param`: the index of a
  // parameter sent as bytes (a bytea), -1 none. `prepare`: false for the
  // statements of transaction control, run unnamed.
  void send(std::string sql, std::vector<Param> params, PgResult* out = nullptr,
            bool binary = false, int binary_param = -1, bool prepare = true) {
    queue_.push_back(Queued{std::move(sql), std::move(params), out, binary, binary_param, prepare});
  }
  // BEGIN, COMMIT, NOTIFY…: unnamed, no parameter.
  void control(std::string sql) { send(std::move(sql), {}, nullptr, false, -1, false); }

  // Runs `sql` after what is queued, in one round trip.
  Status run(const std::string& sql, const std::vector<Param>& params, PgResult* out = nullptr,
             bool binary = false) {
    send(sql, params, out, binary);
    return flush();
  }

  // Sends what is queued as one pipeline and reads every result. The first
  // statement that fails is the error (mapped as failure() does); the
  // server skips the rest (PGRES_PIPELINE_ABORTED). A connection that broke,
  // or answered out of turn, is kStoreUnavailable and is dropped.
  Status flush() {
    std::vector<Queued> q;
    q.swap(queue_);
    if (q.empty()) return Status::ok();
    ++flushes;
    for (const Queued& item : q)
      if (item.sql == "COMMIT") committing = true;
    PGconn* c = conn_.get();
    if (!conn_.ok() || PQenterPipelineMode(c) != 1) return broken();
    struct Step {
      size_t item;
      bool prepare;  // the PQsendPrepare of a statement new to the connection
      std::string name;
    };
    std::vector<Step> steps;
    std::map<std::string, std::string> fresh;  // prepared in this pipeline
    bool sent = true;
    for (size_t i = 0; sent && i < q.size(); ++i) {
      const Queued& item = q[i];
      std::vector<const char*> values;
      std::vector<int> lengths, formats;
      for (size_t k = 0; k < item.params.size(); ++k) {
        const Param& p = item.params[k];
        values.push_back(p ? p->data() : nullptr);
        lengths.push_back(p ? int(p->size()) : 0);
        formats.push_back(int(k) == item.binary_param ? 1 : 0);
      }
      std::string name;
      if (item.prepare) {
        if (auto it = conn_.prepared.find(item.sql); it != conn_.prepared.end()) {
          name = it->second;
        } else if (auto f = fresh.find(item.sql); f != fresh.end()) {
          name = f->second;
        } else if (conn_.prepared.size() + fresh.size() < PgConnection::kPreparedMax) {
          name = "deploy_" + std::to_string(++conn_.statements_named);
          fresh.emplace(item.sql, name);
          steps.push_back(Step{i, true, name});
          sent = PQsendPrepare(c, name.c_str(), item.sql.c_str(), int(values.size()), nullptr) == 1;
        }
      }
      const int n = int(values.size());
      const int format = item.binary ? 1 : 0;
      sent =
          sent && (name.empty() ? PQsendQueryParams(c, item.sql.c_str(), n, nullptr, values.data(),
                                                    lengths.data(), formats.data(), format)
                                : PQsendQueryPrepared(c, name.c_str(), n, values.data(),
                                                      lengths.data(), formats.data(), format)) == 1;
      steps.push_back(Step{i, false, ""});
    }
    if (!sent || PQpipelineSync(c) != 1) return broken();
    Status first = Status::ok();
    for (const Step& step : steps) {
      PgResult r(PQgetResult(c));
      if (!r.raw()) return broken();  // a result was due
      const ExecStatusType st = PQresultStatus(r.raw());
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (step.prepare)
          conn_.prepared.emplace(q[step.item].sql, step.name);
        else if (q[step.item].out)
          *q[step.item].out = std::move(r);
      } else if (st != PGRES_PIPELINE_ABORTED && first.is_ok()) {
        first = failure(r.raw());
      }
      // Each statement's results end with a null.
      if (PGresult* more = PQgetResult(c)) {
        PQclear(more);
        return broken();
      }
      if (!conn_.ok()) return broken();
    }
    PgResult sync(PQgetResult(c));
    if (PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC || PQexitPipelineMode(c) != 1)
      return broken();
    return first;
  }

  // Writes `data` at `offset` of job `id`'s output, in binary, queued. A
  // chunk already there is kept unless empty (open_output's): a flush tried
  // again after a commit that was not confirmed writes nothing twice.
  void put_chunk(uint64_t id, uint64_t offset, std::string_view data) {
    send(
        "INSERT INTO deploy_output (job_id, \"offset\", chunk) VALUES ($1, $2, $3) "
        "ON CONFLICT (job_id, \"offset\") DO UPDATE SET chunk = EXCLUDED.chunk "
        "WHERE octet_length(deploy_output.chunk) = 0",
        {num(int64_t(id)), num(int64_t(offset)), std::string(data)}, nullptr, false, 2);
  }

  // Runs a script of several statements, with no parameters (not in a
  // pipeline: the schema).
  Status script(const char* sql) {
    if (Status st = flush(); !st.is_ok()) return st;
    PgResult r(PQexec(conn_.get(), sql));
    if (PQresultStatus(r.raw()) == PGRES_COMMAND_OK) return Status::ok();
    return failure(r.raw());
  }

  Status failure(PGresult* r) {
    if (!conn_.ok()) return unavailable();
    const char* sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = sqlstate ? sqlstate : "";
    // 57014 statement timeout, 55P03 lock timeout, 40001/40P01 retryable.
    if (code == "57014" || code == "55P03" || code == "40001" || code == "40P01")
      return Status::error("the job store is busy (PostgreSQL " + code + ")", kStoreBusy);
    // Class 08: connection exceptions; 57P0x: the server shutting down.
    if (code.rfind("08", 0) == 0 || code.rfind("57P0", 0) == 0) return unavailable();
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    return Status::error(std::string("the job store's database refused a statement (") + code +
                         "): " + (primary ? primary : "no message"));
  }

  // The change of a visible job: the new change number (also the output's)
  // into *change at the next flush (when not null).
  void bump(PgResult* change = nullptr) { this->change("SELECT bumped FROM m", {}, change); }
  void bump_output() {
    notify = true;
    send("UPDATE deploy_meta SET output_no = output_no + 1", {});
  }
  // Queues `sql`, a statement that changes a visible job, after kBump: its
  // new change number is `(SELECT bumped FROM m)`.
  void change(const std::string& sql, std::vector<Param> params, PgResult* out = nullptr) {
    notify = true;
    send(kBump + sql, std::move(params), out);
  }

  // Adds `delta` to a counter, queued.
  void count(const std::string& scope, const std::string& name, int64_t delta) {
    send(
        "INSERT INTO deploy_counters (scope, name, value) VALUES ($1, $2, GREATEST($3::bigint, 0)) "
        "ON CONFLICT (scope, name) DO UPDATE SET value = GREATEST(deploy_counters.value + $3, 0)",
        {scope, name, num(delta)});
  }

  Status load(uint64_t id, Job* job, PgResult* raw = nullptr) {
    PgResult r;
    Status st =
        run(std::string("SELECT ") + kJobColumns + kLoadColumns + " FROM deploy_jobs WHERE id = $1",
            {num(int64_t(id))}, &r);
    if (!st.is_ok()) return st;
    if (r.rows() == 0) return job_not_found(id, "is not in the store");
    *job = job_of(r, 0);
    if (raw) *raw = std::move(r);
    return Status::ok();
  }

  // load() for a runner's write: a job that left the store is not its own.
  Status load_runners(uint64_t id, Job* job, PgResult* raw) {
    const Status st = load(id, job, raw);
    return st.code() == kNotFound ? job_not_owned(id) : st;
  }

  // Queues the read of the unfinished jobs, oldest first, and the change
  // number, in one statement (one snapshot): unfinished_of() reads it.
  void send_unfinished(PgResult* r) {
    send(std::string("SELECT j.*, m.change_no FROM ") + kChangeRow + " LEFT JOIN LATERAL (SELECT " +
             kJobColumns + " FROM deploy_jobs WHERE state <= 3) j ON true ORDER BY j.id",
         {}, r);
  }
  // The jobs of send_unfinished's result; *elsewhere (when not null): the
  // ids of those running on another node; *change: the change number they
  // reflect.
  void unfinished_of(const PgResult& r, std::vector<Job>* jobs, std::set<uint64_t>* elsewhere,
                     uint64_t* change) {
    jobs->clear();
    for (int i = 0; i < r.rows(); ++i) {
      if (change) *change = uint64_t(r.i64(i, kJobColumnCount));
      if (r.null(i, 0)) continue;  // none: the row of deploy_meta alone
      jobs->push_back(job_of(r, i));
      if (elsewhere && JobState(r.i64(i, 2)) == JobState::running && r.text(i, 16) != node)
        elsewhere->insert(uint64_t(r.i64(i, 0)));
    }
  }
  Status unfinished(std::vector<Job>* jobs, std::set<uint64_t>* elsewhere = nullptr,
                    uint64_t* change = nullptr) {
    PgResult r;
    send_unfinished(&r);
    Status st = flush();
    if (st.is_ok()) unfinished_of(r, jobs, elsewhere, change);
    return st;
  }

  // Moves job `id` from one of `from` (state numbers, SQL list) to `to`,
  // with `set` (more assignments, parameters from $2), bumping the change
  // number in the same statement; *changed: whether it did; *row (when not
  // null): the job after (kJobColumns, kLoadColumns).
  Status move(uint64_t id, const char* from, JobState to, const std::string& set,
              const std::string& where, std::vector<Param> params, bool* changed,
              PgResult* row = nullptr) {
    PgResult r;
    move_later(id, from, to, set, where, std::move(params), &r);
    Status st = flush();
    if (!st.is_ok()) return st;
    *changed = r.rows() == 1;
    if (row) *row = std::move(r);
    return st;
  }
  // move(), queued: its row (none when it did not move) into *row at the
  // next flush.
  void move_later(uint64_t id, const char* from, JobState to, const std::string& set = "",
                  const std::string& where = "", std::vector<Param> params = {},
                  PgResult* row = nullptr) {
    params.insert(params.begin(), num(int64_t(id)));
    change("UPDATE deploy_jobs SET state = " + num(int(to)) +
               ", change_no = (SELECT bumped FROM m)" + set + " WHERE id = $1 AND state IN (" +
               from + ")" + where + " RETURNING " + kJobColumns + kLoadColumns,
           std::move(params), row);
  }

  // Ends `job` (read in this transaction, unfinished) in final `state`,
  // fenced by `fence` (more WHERE conditions on the running job, parameters
  // from $3); counts it (queued). *changed: whether the fence held.
  Status end(const Job& job, JobState state, const Instant& now, const std::string& set,
             const std::string& where, std::vector<Param> params, bool* changed,
             Micros started_mono = 0, const std::string& job_node = "") {
    params.insert(params.begin(), num(now.wall));
    Status st = move(job.id, "1, 2, 3", state, ", finished_at = $2" + set, where, params, changed);
    if (!st.is_ok() || !*changed) return st;
    // Its notifications are due now.
    send("UPDATE deploy_notifications SET due = now() WHERE job_id = $1 AND state = 1",
         {num(int64_t(job.id))});
    const std::string s = num(int(state));
    count("", "finished." + s, 1);
    count(job.target, "finished." + s, 1);
    if (state == JobState::succeeded)
      send(
          "INSERT INTO deploy_counters VALUES ($1, 'last_success', $2) ON CONFLICT "
          "(scope, name) DO UPDATE SET value = GREATEST(deploy_counters.value, $2)",
          {job.target, num(now.wall)});
    if (job.started_at > 0) {
      // The monotonic clock where the job started on this node, else the
      // wall clocks of two nodes.
      const Micros duration = job_node == node && started_mono > 0 ? now.mono - started_mono
                                                                   : now.wall - job.started_at;
      if (duration >= 0) {
        size_t bucket = 0;
        while (bucket < kDurationBuckets && duration > kDurationBucketBounds[bucket]) ++bucket;
        count(job.target, "bucket." + num(int64_t(bucket)), 1);
        count(job.target, "duration_sum", duration);
        count(job.target, "duration_count", 1);
      }
    }
    return Status::ok();
  }

  // The job becomes running on this node, its lease from now on the
  // database's clock, queued: *row as move_later's. Never started before
  // its submission (file_store.cc's claim says why).
  void claim_later(uint64_t id, const Instant& now, Micros lease, PgResult* row) {
    move_later(id, "1, 2", JobState::running,
               ", started_at = GREATEST($2::bigint, submitted_at), started_mono = $3, node = $4, "
               "runner_pid = 0, runner_ticks = 0, "
               "lease_expires = now() + make_interval(secs => $5::double precision / 1000000)",
               "", {num(now.wall), num(now.mono), node, num(lease)}, row);
  }

  // The transaction's end, after what is queued, in one round trip: NOTIFY
  // when it changed something, and COMMIT unless `single` (one statement
  // of its own).
  Status commit(bool single) {
    if (notify) control(std::string("NOTIFY ") + kChannel);
    if (!single) control("COMMIT");
    return flush();
  }

  size_t flushes = 0;       // pipelines sent
  bool committing = false;  // a pipeline held the COMMIT
  bool notify = false;

 private:
  struct Queued {
    std::string sql;
    std::vector<Param> params;
    PgResult* out;
    bool binary;
    int binary_param;
    bool prepare;
  };
  // A pipeline that did not go or come back as sent.
  Status broken() {
    conn_.set_broken();
    return unavailable();
  }

  PgConnection& conn_;
  std::vector<Queued> queue_;

 public:
  const std::string& node;
};

PgStore::PgStore(std::string conninfo, std::string node, Micros lease)
    : conninfo_(std::move(conninfo)), node_(std::move(node)), lease_(lease) {}

PgStore::~PgStore() = default;

// Connects when there is no good connection, creating or upgrading the
// schema under the transition lock.
Status PgStore::connect_locked() {
  if (conn_ && conn_->ok()) return Status::ok();
  conn_ = std::make_unique<PgConnection>(conninfo_);
  if (!conn_->ok()) {
    conn_.reset();
    return unavailable();
  }
  Tx tx(*conn_, node_);
  // A schema at this build's version is left as it is: the script's IF NOT
  // EXISTS statements would still take their locks (ALTER TABLE's ACCESS
  // EXCLUSIVE), and deadlock with the transactions of other processes that
  // take no transition lock (a notification's claim, a job's output). A
  // read that fails (no such table yet) is no answer: the script runs.
  PgResult r;
  if (tx.run("SELECT max(version) FROM deploy_schema_version", {}, &r).is_ok() && r.rows() == 1 &&
      r.i64(0, 0) == kSchemaVersion)
    return Status::ok();
  if (!conn_->ok()) {
    conn_.reset();
    return unavailable();
  }
  tx.control("BEGIN");
  tx.send("SELECT pg_advisory_xact_lock(" + std::to_string(kTransitionLock) + ")", {});
  Status st = tx.script(kSchema);
  if (st.is_ok()) st = tx.run("SELECT max(version) FROM deploy_schema_version", {}, &r);
  if (st.is_ok()) {
    const int64_t version = r.i64(0, 0);
    if (version > kSchemaVersion)
      st = Status::error("the job store's schema is version " + num(version) +
                         ", newer than this build's (" + num(kSchemaVersion) + ")");
    else if (version < kSchemaVersion)
      st = tx.run("INSERT INTO deploy_schema_version VALUES ($1)", {num(kSchemaVersion)});
  }
  if (st.is_ok()) st = tx.commit(false);
  if (!st.is_ok()) conn_.reset();
  return st;
}

template <class F>
Status PgStore::transact(Kind kind, F&& body, Micros timeout, bool transition) {
  const Micros bound = timeout > 0 ? timeout : Micros(kStatementTimeoutMs) * 1000;
  std::unique_lock<std::timed_mutex> hold(mutex_, std::defer_lock);
  if (!hold.try_lock_for(std::chrono::microseconds(bound)))
    return Status::error("the job store's connection is busy", kStoreBusy);
  Status st = Status::ok();
  for (int attempt = 0;; ++attempt) {
    // A connection that went stale since the last call (the server
    // restarted) is replaced before anything is sent.
    if (conn_ && !conn_->quiet()) conn_.reset();
    const bool had_connection = conn_ != nullptr;
    if (!(st = connect_locked()).is_ok()) return st;
    Tx tx(*conn_, node_);
    // BEGIN, the bounds and the lock go in one pipeline with the body's
    // first statement: the lock is still its own statement, taken before
    // the body's first read takes its snapshot.
    if (kind == Kind::read) tx.control("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (kind == Kind::write || kind == Kind::join) tx.control("BEGIN");
    if (kind != Kind::single && timeout > 0)
      tx.send(
          "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)",
          {num(std::max<Micros>(1, timeout / 1000))});
    if (kind == Kind::write && transition)
      tx.send("SELECT pg_advisory_xact_lock(" + std::to_string(kTransitionLock) + ")", {});
    if (kind == Kind::join)
      tx.send("SELECT pg_advisory_xact_lock_shared(" + std::to_string(kTransitionLock) + ")", {});
    st = body(tx);
    if (st.is_ok()) st = tx.commit(kind == Kind::single);
    if (st.is_ok()) return st;
    // The connection broke in the first pipeline, which held no COMMIT:
    // nothing was committed (or it was a read), so once more on a new one.
    if (attempt == 0 && had_connection && !conn_->ok() && tx.flushes <= 1 && !tx.committing) {
      conn_.reset();
      continue;
    }
    break;
  }
  if (conn_->ok() && kind != Kind::single) {
    PGresult* r = PQexec(conn_->get(), "ROLLBACK");
    PQclear(r);
  }
  if (!conn_->ok()) conn_.reset();  // reconnect on the next call
  return st;
}

namespace {

PendingJob pending_of(const Job& j, const GroupByOf& group_by, const Instant& now, bool elsewhere) {
  PendingJob p{j.id,
               j.target,
               j.state,
               now.mono_of(j.submitted_at),
               j.not_before ? now.mono_of(j.not_before) : 0,
               "",
               elsewhere};
  if (group_by) {
    if (auto g = job_group(j.params, group_by(j.target))) p.group = *g;
  }
  return p;
}

// `elsewhere`: the ids of the jobs running on other nodes.
std::vector<PendingJob> pending_of(const std::vector<Job>& jobs, const GroupByOf& group_by,
                                   const Instant& now, const std::set<uint64_t>& elsewhere) {
  std::vector<PendingJob> out;
  for (const Job& j : jobs) out.push_back(pending_of(j, group_by, now, elsewhere.count(j.id) > 0));
  return out;
}

const char* kRunnerFence = " AND runner_pid = $3 AND runner_ticks = $4 AND node = $5";

}  // namespace

namespace {

// decide_submission for `s` over `jobs` (those in `elsewhere` running on
// another node); *not_before_wall: the decision's not_before on the wall
// clock (0: none).
SubmissionDecision decide(const NewSubmission& s, const Instant& now, const std::vector<Job>& jobs,
                          const std::set<uint64_t>& elsewhere, Micros* not_before_wall) {
  const SubmissionDecision d = decide_submission(pending_of(jobs, s.group_by, now, elsewhere),
                                                 s.target, s.group, s.policy, s.limits, now.mono);
  *not_before_wall = d.not_before ? now.wall_of(d.not_before) : 0;
  return d;
}

// A submission's outputs before its decision.
void reset(SubmitResult* out) {
  out->superseded.clear();
  out->duplicate = false;
  out->needs_flush = true;  // (every commit is durable: make_durable has nothing to do)
  out->job = Job();
}

// Queues the join of waiting job `id` and its count in one statement: a job
// no longer waiting (it cannot be, under the lock) is counted rejected, as
// queue_full. *row: the job after, or none.
void send_join(PgStore::Tx& tx, uint64_t id, const NewSubmission& s, Micros not_before_wall,
               PgResult* row) {
  tx.change(std::string(", j AS (UPDATE deploy_jobs SET requests = requests + 1, not_before = $2, "
                        "params = $3, change_no = (SELECT bumped FROM m) WHERE id = $1 AND state "
                        "= 1 RETURNING ") +
                kJobColumns +
                "), c AS (INSERT INTO deploy_counters (scope, name, value) SELECT '', CASE "
                "WHEN EXISTS (SELECT 1 FROM j) THEN 'coalesced' ELSE $4::text END, 1 ON "
                "CONFLICT (scope, name) DO UPDATE SET value = deploy_counters.value + 1) "
                "SELECT * FROM j",
            {num(int64_t(id)), num(not_before_wall), encode_params(s.params),
             "rejected." + num(int(Rejection::queue_full))},
            row);
}

// Queues the new job, with its notifications, and its count. *row: the job.
void send_new_job(PgStore::Tx& tx, const NewSubmission& s, JobState state, const Instant& now,
                  Micros not_before_wall, PgResult* row) {
  tx.change(std::string(", j AS (INSERT INTO deploy_jobs (target, state, params, not_before, "
                        "submitted_by, submitted_at, change_no, idempotency_key) VALUES ($1, $2, "
                        "$3, $4, $5, $6, (SELECT bumped FROM m), $7) RETURNING ") +
                kJobColumns +
                "), notes AS (INSERT INTO deploy_notifications (job_id, idx) SELECT j.id, "
                "generate_series(0, $8::int - 1) FROM j) SELECT * FROM j",
            {s.target, num(int(state)), encode_params(s.params), num(not_before_wall),
             s.submitted_by, num(now.wall), s.idempotency_key,
             num(std::min<uint32_t>(s.notifications, kNotificationsMax))},
            row);
  tx.count("", "accepted", 1);
}

// The answer of a join or a new job from the row its statement returned.
Status answer(const NewSubmission& s, const PgResult& row, SubmitResult* out) {
  if (out->kind == SubmissionDecision::Kind::coalesce) {
    if (row.rows() == 1)
      out->job = job_of(row, 0);
    else
      out->kind = SubmissionDecision::Kind::queue_full;
    return Status::ok();
  }
  if (row.rows() != 1) return Status::error("no job id was handed out", kStoreDamaged);
  out->job = job_of(row, 0);
  out->job.notifications.assign(std::min<uint32_t>(s.notifications, kNotificationsMax),
                                Notification{});
  return Status::ok();
}

}  // namespace

struct PgStore::Submission {
  const NewSubmission* s;
  Instant now;
  SubmitResult* out;
  Status status = Status::ok();
  bool done = false;
};

// Group commit: the submissions of this process's threads that come while
// one is being decided wait, and are decided together next by one of them,
// one after another in one transaction (submit_together). A submission with
// an idempotency key or DeploySupersede is decided alone.
Status PgStore::submit(const NewSubmission& s, const Instant& now, SubmitResult* out) {
  if (s.idempotency_key || s.supersede != Supersede::off) return submit_one(s, now, out);
  if (s.policy.quiet_window > 0) {
    bool joined = false;
    const Status st = try_join(s, now, out, &joined);
    if (!st.is_ok() || joined) return st;
  }
  Submission mine{&s, now, out};
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kStatementTimeoutMs);
  std::unique_lock<std::mutex> hold(submit_mutex_);
  submissions_.push_back(&mine);
  while (!mine.done) {
    if (!submitting_) {
      // This thread decides every submission waiting now, its own among them.
      submitting_ = true;
      std::vector<Submission*> batch;
      batch.swap(submissions_);
      hold.unlock();
      // The others wait for this thread: whatever happens, each is answered.
      try {
        submit_together(batch);
      } catch (...) {
        for (Submission* b : batch)
          b->status = Status::error("the job store could not decide a submission");
      }
      hold.lock();
      for (Submission* b : batch) b->done = true;
      submitting_ = false;
      submitted_.notify_all();
      continue;
    }
    if (submitted_.wait_until(hold, deadline) == std::cv_status::timeout && !mine.done) {
      auto it = std::find(submissions_.begin(), submissions_.end(), &mine);
      if (it != submissions_.end()) {
        submissions_.erase(it);
        return Status::error("the job store's connection is busy", kStoreBusy);
      }
      // Being decided: its answer comes with the others' (the statements
      // are bounded).
      submitted_.wait(hold, [&] { return mine.done; });
    }
  }
  return mine.status;
}

// The submissions of `batch`, in its order, in one transaction: one read of
// the unfinished jobs, then each decision applied to that list before the
// next is made, as the database applies it. A batch that fails for another
// reason than a busy or unreachable store is decided again one by one, so
// that a submission the database refuses fails alone.
void PgStore::submit_together(const std::vector<Submission*>& batch) {
  if (batch.size() == 1) {
    batch[0]->status = submit_one(*batch[0]->s, batch[0]->now, batch[0]->out);
    return;
  }
  std::vector<PgResult> rows(batch.size());
  Status st = transact(Kind::write, [&](Tx& tx) {
    PgResult pending;
    tx.send_unfinished(&pending);
    Status st = tx.flush();
    if (!st.is_ok()) return st;
    std::vector<Job> jobs;
    std::set<uint64_t> elsewhere;
    tx.unfinished_of(pending, &jobs, &elsewhere, nullptr);
    for (size_t i = 0; i < batch.size(); ++i) {
      const NewSubmission& s = *batch[i]->s;
      const Instant& now = batch[i]->now;
      SubmitResult* out = batch[i]->out;
      reset(out);
      rows[i] = PgResult();
      Micros not_before_wall = 0;
      const SubmissionDecision d = decide(s, now, jobs, elsewhere, &not_before_wall);
      out->kind = d.kind;
      if (d.kind == SubmissionDecision::Kind::coalesce) {
        send_join(tx, d.job_id, s, not_before_wall, &rows[i]);
        for (Job& j : jobs)
          if (j.id == d.job_id && j.state == JobState::waiting) {
            ++j.requests;
            j.not_before = not_before_wall;
            j.params = s.params;
          }
      } else if (d.kind == SubmissionDecision::Kind::new_job) {
        send_new_job(tx, s, d.state, now, not_before_wall, &rows[i]);
        // The next decisions see it (and may join it): its id first.
        if (i + 1 < batch.size()) {
          if (!(st = tx.flush()).is_ok()) return st;
          if (rows[i].rows() != 1) return Status::error("no job id was handed out", kStoreDamaged);
          jobs.push_back(job_of(rows[i], 0));
        }
      } else {
        tx.count("", "rejected." + num(int(Rejection::queue_full)), 1);
      }
    }
    return st;
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    Submission& b = *batch[i];
    if (st.is_ok())
      b.status = b.out->kind == SubmissionDecision::Kind::queue_full ? Status::ok()
                                                                     : answer(*b.s, rows[i], b.out);
    else if (st.code() == kStoreBusy || st.code() == kStoreUnavailable)
      b.status = st;
    else
      b.status = submit_one(*b.s, b.now, b.out);
  }
}

// The submission as a join, holding the transition lock shared (pg_store.h):
// one pipeline reads the target's waiting jobs, the next joins the one
// decide_submission picks, with the commit. Another transition cannot move
// it meanwhile, and a join cannot make another job take or stop taking
// triggers, so the decision is the one the exclusive lock would give.
// *joined false (nothing written): the decision is no join, for a new job
// or a full queue, which submit_together decides under the lock.
Status PgStore::try_join(const NewSubmission& s, const Instant& now, SubmitResult* out,
                         bool* joined) {
  PgResult row;
  Status st = transact(Kind::join, [&](Tx& tx) {
    reset(out);
    *joined = false;
    PgResult waiting;
    tx.send(std::string("SELECT ") + kJobColumns +
                " FROM deploy_jobs WHERE state = 1 AND target = $1 ORDER BY id",
            {s.target}, &waiting);
    Status st = tx.flush();
    if (!st.is_ok()) return st;
    Micros not_before_wall = 0;
    const SubmissionDecision d = decide(s, now, jobs_of(waiting), {}, &not_before_wall);
    if (d.kind != SubmissionDecision::Kind::coalesce) return st;
    out->kind = d.kind;
    send_join(tx, d.job_id, s, not_before_wall, &row);
    *joined = true;
    return st;
  });
  if (!st.is_ok() || !*joined) return st;
  return answer(s, row, out);
}

Status PgStore::submit_one(const NewSubmission& s, const Instant& now, SubmitResult* out) {
  // The submission's last statement (the join, or the new job) rides in the
  // commit's pipeline: its job is read once committed.
  PgResult last;
  bool last_pending = false;
  Status st = transact(Kind::write, [&](Tx& tx) {
    reset(out);
    last_pending = false;
    // One pipeline: BEGIN, the lock, the key's job, the unfinished jobs.
    PgResult keyed, pending;
    if (s.idempotency_key)
      tx.send(std::string("SELECT ") + kJobColumns +
                  " FROM deploy_jobs WHERE target = $1 AND idempotency_key = $2 LIMIT 1",
              {s.target, *s.idempotency_key}, &keyed);
    tx.send_unfinished(&pending);
    Status st = tx.flush();
    if (!st.is_ok()) return st;
    if (keyed.rows() == 1) {
      out->duplicate = true;
      out->job = job_of(keyed, 0);
      return st;
    }
    std::vector<Job> jobs;
    std::set<uint64_t> elsewhere;
    tx.unfinished_of(pending, &jobs, &elsewhere, nullptr);
    Micros not_before_wall = 0;
    const SubmissionDecision d = decide(s, now, jobs, elsewhere, &not_before_wall);
    out->kind = d.kind;
    if (d.kind == SubmissionDecision::Kind::coalesce) {
      send_join(tx, d.job_id, s, not_before_wall, &last);
      last_pending = true;
      return st;
    }
    if (d.kind != SubmissionDecision::Kind::new_job) {
      tx.count("", "rejected." + num(int(Rejection::queue_full)), 1);
      return st;
    }
    // The older unfinished jobs of the target and group it supersedes,
    // oldest first.
    std::vector<const Job*> older;
    for (const Job& other : jobs) {
      if (s.supersede == Supersede::off || other.target != s.target) continue;
      if (other.state == JobState::running && s.supersede != Supersede::running) continue;
      if (s.group_by && job_group(other.params, s.group_by(s.target)).value_or("") != s.group)
        continue;
      older.push_back(&other);
    }
    send_new_job(tx, s, d.state, now, not_before_wall, &last);
    if (older.empty()) {
      last_pending = true;
      return st;
    }
    if (!(st = tx.flush()).is_ok() || !(st = answer(s, last, out)).is_ok()) return st;
    for (const Job* other : older) {
      if (other->id >= out->job.id) continue;
      SupersededJob gone{other->id, other->state == JobState::running, {}};
      Job after;
      if (!(st = cancel_unfinished(tx, other->id, std::nullopt, out->job.id, now, &after,
                                   &gone.nudge))
               .is_ok())
        return st;
      if (after.superseded_by == out->job.id) out->superseded.push_back(gone);
    }
    return st;
  });
  if (!st.is_ok() || !last_pending) return st;
  return answer(s, last, out);
}

Status PgStore::withdraw(uint64_t id) {
  return transact(Kind::write, [&](Tx& tx) {
    PgResult r;
    Status st = tx.run("DELETE FROM deploy_jobs WHERE id = $1 AND state IN (1, 2) RETURNING id",
                       {num(int64_t(id))}, &r);
    if (!st.is_ok()) return st;
    if (r.rows() == 0) return job_not_found(id, "is neither waiting nor queued");
    tx.bump();
    tx.count("", "accepted", -1);
    return st;
  });
}

Status PgStore::count_rejection(Rejection why) {
  return transact(Kind::write, [&](Tx& tx) {
    tx.count("", "rejected." + num(int(why)), 1);
    return Status::ok();
  });
}

Status PgStore::count_ignored() {
  return transact(Kind::write, [&](Tx& tx) {
    tx.count("", "ignored", 1);
    return Status::ok();
  });
}

Status PgStore::schedule_pass(
    const GroupByOf& group_by,
    const std::function<ScheduleDecision(const std::vector<PendingJob>&)>& decide,
    const Instant& now, ScheduleDecision* decision, std::vector<Job>* started, uint64_t* seen) {
  // First without the lock, on one snapshot (one statement): a pass that
  // changes nothing (most, while jobs wait for their quiet window) is
  // decided there and takes no lock. Otherwise the lock, and the decision
  // made again unless the change number shows that nothing changed since.
  std::vector<Job> jobs;
  std::set<uint64_t> elsewhere;
  uint64_t read_at = 0;
  Status st = transact(Kind::single, [&](Tx& tx) {
    PgResult r;
    tx.send_unfinished(&r);
    Status st = tx.flush();
    if (st.is_ok()) tx.unfinished_of(r, &jobs, &elsewhere, &read_at);
    return st;
  });
  if (!st.is_ok()) return st;
  ScheduleDecision guess = decide(pending_of(jobs, group_by, now, elsewhere));
  if (guess.expire.empty() && guess.ready.empty() && guess.start.empty()) {
    *decision = std::move(guess);
    if (seen) *seen = read_at;
    return st;
  }
  std::vector<Job> claimed;
  PgResult after;
  st = transact(Kind::write, [&](Tx& tx) {
    claimed.clear();
    elsewhere.clear();
    uint64_t change = 0;
    Status st = tx.unfinished(&jobs, &elsewhere, &change);
    if (!st.is_ok()) return st;
    *decision = change == read_at ? guess : decide(pending_of(jobs, group_by, now, elsewhere));
    std::map<uint64_t, const Job*> by_id;
    for (const Job& j : jobs) by_id[j.id] = &j;
    bool changed = false;
    for (uint64_t id : decision->expire) {
      auto it = by_id.find(id);
      if (it == by_id.end() || it->second->state == JobState::running) continue;
      if (!(st = tx.end(*it->second, JobState::expired, now, "", " AND state IN (1, 2)", {},
                        &changed))
               .is_ok())
        return st;
    }
    for (uint64_t id : decision->ready) tx.move_later(id, "1", JobState::queued);
    // The claims in one pipeline, each returning its job.
    std::vector<PgResult> rows(decision->start.size());
    for (size_t i = 0; i < rows.size(); ++i)
      tx.claim_later(decision->start[i], now, lease_, &rows[i]);
    if (!(st = tx.flush()).is_ok()) return st;
    for (const PgResult& row : rows)
      if (row.rows() == 1) claimed.push_back(job_of(row, 0));
    // The change number at the end, read with the commit.
    if (seen) tx.send("SELECT change_no FROM deploy_meta", {}, &after);
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  if (seen) *seen = uint64_t(after.i64(0, 0));
  started->insert(started->end(), claimed.begin(), claimed.end());
  return st;
}

Status PgStore::ready(uint64_t id, const Instant&) {
  return transact(Kind::write, [&](Tx& tx) {
    bool changed = false;
    Status st = tx.move(id, "1", JobState::queued, "", "", {}, &changed);
    if (st.is_ok() && !changed) return job_not_found(id, "is not waiting");
    return st;
  });
}

Status PgStore::start(uint64_t id, const Instant& now, Job* out) {
  return transact(Kind::write, [&](Tx& tx) {
    PgResult row;
    tx.claim_later(id, now, lease_, &row);
    Status st = tx.flush();
    if (st.is_ok() && row.rows() == 0) return job_not_found(id, "is not queued");
    if (st.is_ok()) *out = job_of(row, 0);
    return st;
  });
}

namespace {

// The SET of a runner's report, from parameter $first: job_pid, progress,
// stage, log_size, log_incomplete, stages, outputs. An unchanged value is
// left as it is.
std::string report_set(int first) {
  const auto p = [&](int i) { return "$" + std::to_string(first + i); };
  return ", job_pid = CASE WHEN " + p(0) + "::int > 0 THEN " + p(0) +
         "::int ELSE job_pid END, progress = CASE WHEN " + p(1) + "::int BETWEEN 0 AND 100 THEN " +
         p(1) + "::int ELSE progress END, stage = COALESCE(" + p(2) +
         "::text, stage), log_size = GREATEST(log_size, " + p(3) +
         "::bigint), log_complete = log_complete AND NOT " + p(4) +
         "::boolean, stages = COALESCE(" + p(5) + "::text, stages), outputs = COALESCE(" + p(6) +
         "::text, outputs)";
}

std::vector<Param> report_params(const RunnerReport& r) {
  return {num(r.job_pid),
          num(r.progress),
          r.stage,
          num(int64_t(r.log_size)),
          r.log_incomplete ? "true" : "false",
          r.stages ? Param(encode_stages(*r.stages)) : Param(),
          r.outputs ? Param(encode_outputs(*r.outputs)) : Param()};
}

bool row_run_by(const PgResult& r, const RunnerRef& runner, const std::string& node) {
  return JobState(r.i64(0, 2)) == JobState::running && r.i64(0, 18) == runner.runner_pid &&
         uint64_t(r.i64(0, 19)) == runner.runner_start_ticks && r.text(0, 16) == node;
}

}  // namespace

Status PgStore::runner_recorded(uint64_t id, const RunnerRef& runner, int32_t job_pid,
                                Micros timeout, bool* cancel_requested) {
  return transact(
      Kind::write,
      [&](Tx& tx) {
        Job j;
        PgResult raw;
        Status st = tx.load_runners(id, &j, &raw);
        if (!st.is_ok()) return st;
        // Taken only from the launcher (no runner yet), or by the same runner.
        if (!row_run_by(raw, RunnerRef{}, node_) && !row_run_by(raw, runner, node_))
          return job_not_owned(id);
        // Pids show to nobody: the followers of output wake, no stream.
        tx.bump_output();
        tx.send(
            "UPDATE deploy_jobs SET runner_pid = $2, runner_ticks = $3, job_pid = CASE WHEN "
            "$4::int > 0 THEN $4::int ELSE job_pid END, lease_expires = now() + "
            "make_interval(secs => $5::double precision / 1000000) WHERE id = $1",
            {num(int64_t(id)), num(runner.runner_pid), num(int64_t(runner.runner_start_ticks)),
             num(job_pid), num(lease_)});
        if (cancel_requested) *cancel_requested = raw.boolean(0, 20);
        return st;
      },
      timeout);
}

Status PgStore::record_progress(uint64_t id, const RunnerRef& runner, const RunnerReport& report,
                                Micros timeout, bool* cancel_requested) {
  return transact(
      Kind::write,
      [&](Tx& tx) {
        Job j;
        PgResult raw;
        Status st = tx.load_runners(id, &j, &raw);
        if (!st.is_ok()) return st;
        if (!row_run_by(raw, runner, node_)) return job_not_owned(id);
        const bool visible =
            (report.progress >= 0 && report.progress <= 100 && report.progress != j.progress) ||
            (report.stage && report.stage != j.stage) ||
            (report.stages && *report.stages != j.stages) ||
            (report.outputs && *report.outputs != j.outputs) ||
            (report.log_incomplete && j.log_complete);
        const bool quiet = (report.job_pid > 0 && report.job_pid != raw.i64(0, kJobColumnCount)) ||
                           int64_t(report.log_size) > raw.i64(0, kJobColumnCount + 1);
        if (quiet && !visible) tx.bump_output();
        // Also the heartbeat: the lease renewed on the database's clock.
        std::vector<Param> params = {num(int64_t(id)), num(lease_)};
        for (Param& p : report_params(report)) params.push_back(std::move(p));
        const std::string update =
            std::string("UPDATE deploy_jobs SET change_no = ") +
            (visible ? "(SELECT bumped FROM m)" : "change_no") +
            ", lease_expires = now() + make_interval(secs => $2::double precision / 1000000)" +
            report_set(3) + " WHERE id = $1";
        if (visible)
          tx.change(update, std::move(params));
        else
          tx.send(update, std::move(params));
        if (cancel_requested) *cancel_requested = raw.boolean(0, 20);
        return st;
      },
      timeout);
}

Status PgStore::cancel(uint64_t id, const std::optional<std::string>& by, const Instant& now,
                       Job* out, RunnerRef* nudge) {
  return transact(Kind::write,
                  [&](Tx& tx) { return cancel_unfinished(tx, id, by, 0, now, out, nudge); });
}

// Cancels job `id` inside a transition (cancel, supersede): a waiting or
// queued one ends canceled; a running one gets the flag its runner reads.
// The first cancel's user and superseding job are kept. kConflict when it
// has finished.
Status PgStore::cancel_unfinished(Tx& tx, uint64_t id, const std::optional<std::string>& by,
                                  uint64_t superseded_by, const Instant& now, Job* out,
                                  RunnerRef* nudge) {
  Job j;
  PgResult raw;
  Status st = tx.load(id, &j, &raw);
  if (!st.is_ok()) return st;
  *nudge = RunnerRef{};
  if (is_final(j.state)) {
    *out = j;
    return Status::error("job " + num(int64_t(id)) + " has finished already", kConflict);
  }
  // Who asked first stays: the user and the superseding job are parameters
  // $N and $N+1.
  auto who = [](int n) {
    return ", canceled_by = CASE WHEN cancel_requested THEN canceled_by ELSE $" + num(n) +
           " END, superseded_by = CASE WHEN cancel_requested THEN superseded_by ELSE $" +
           num(n + 1) + "::bigint END";
  };
  bool changed = false;
  if (j.state == JobState::running) {
    tx.change("UPDATE deploy_jobs SET change_no = (SELECT bumped FROM m)" + who(2) +
                  ", cancel_requested = true WHERE id = $1",
              {num(int64_t(id)), by, num(int64_t(superseded_by))});
    // Only a runner of this node can be signaled from here, and only the
    // process the row names (its pid and start time: a row is untrusted).
    const int64_t pid = raw.i64(0, 18);
    if (raw.text(0, 16) == node_ && pid > 0 && pid <= INT32_MAX)
      *nudge = runner_to_signal(RunnerRef{int32_t(pid), uint64_t(raw.i64(0, 19))});
  } else if (!(st = tx.end(j, JobState::canceled, now, who(3), "",
                           {by, num(int64_t(superseded_by))}, &changed))
                  .is_ok()) {
    return st;
  }
  if (!(st = tx.load(id, out)).is_ok() || !changed) return st;
  // No runner writes its output: the line is the transition's.
  PgResult end;
  if (!(st = tx.run("SELECT COALESCE(max(\"offset\" + octet_length(chunk)), 0) FROM deploy_output "
                    "WHERE job_id = $1",
                    {num(int64_t(id))}, &end))
           .is_ok())
    return st;
  tx.put_chunk(id, uint64_t(end.i64(0, 0)), cancel_note(out->canceled_by, out->superseded_by));
  tx.bump_output();
  return st;
}

Status PgStore::finish(uint64_t id, const RunnerRef& runner, const Outcome& outcome,
                       const RunnerReport& last, const Instant& now, Micros timeout) {
  if (!is_final(outcome.state)) return Status::error("finish: not a final state");
  return transact(
      Kind::write,
      [&](Tx& tx) {
        Job j;
        PgResult raw;
        Status st = tx.load_runners(id, &j, &raw);
        if (!st.is_ok()) return st;
        if (!row_run_by(raw, runner, node_)) return job_not_owned(id);
        const auto opt = [](const std::optional<int>& v) { return v ? Param(num(*v)) : Param(); };
        std::vector<Param> params = {num(runner.runner_pid),
                                     num(int64_t(runner.runner_start_ticks)), node_,
                                     opt(outcome.exit_code), opt(outcome.signal)};
        for (Param& p : report_params(last)) params.push_back(std::move(p));
        bool changed = false;
        st = tx.end(j, outcome.state, now,
                    ", exit_code = $6::int, signal = $7::int, lease_expires = NULL" + report_set(8),
                    " AND state = 3" + std::string(kRunnerFence), params, &changed, raw.i64(0, 17),
                    raw.text(0, 16));
        if (st.is_ok() && !changed) return job_not_owned(id);
        return st;
      },
      timeout);
}

Status PgStore::launch_failed(uint64_t id, const Instant& now) {
  return transact(Kind::write, [&](Tx& tx) {
    Job j;
    PgResult raw;
    Status st = tx.load_runners(id, &j, &raw);
    if (!st.is_ok()) return st;
    if (j.state != JobState::running || raw.i64(0, 18) != 0 || raw.text(0, 16) != node_)
      return job_not_owned(id);
    bool changed = false;
    st = tx.end(j, JobState::failed, now, ", lease_expires = NULL",
                " AND state = 3 AND runner_pid = 0", {}, &changed, raw.i64(0, 17), raw.text(0, 16));
    if (st.is_ok() && !changed) return job_not_owned(id);
    return st;
  });
}

Status PgStore::unstart(uint64_t id) {
  return transact(Kind::write, [&](Tx& tx) {
    bool changed = false;
    Status st = tx.move(id, "3", JobState::queued,
                        ", started_at = 0, started_mono = 0, node = NULL, lease_expires = NULL",
                        " AND runner_pid = 0 AND node = $2", {node_}, &changed);
    if (st.is_ok() && !changed) return job_not_owned(id);
    return st;
  });
}

Status PgStore::detect_lost(const Instant& now, Micros quiet_since, std::vector<LostJob>* ended) {
  std::vector<LostJob> lost;
  Status st = transact(Kind::write, [&](Tx& tx) {
    PgResult r;
    Status st = tx.run(std::string("SELECT ") + kJobColumns +
                           ", lease_expires < now(), "
                           "extract(epoch FROM now() - pg_postmaster_start_time())::bigint "
                           "FROM deploy_jobs WHERE state = 3 ORDER BY id",
                       {}, &r);
    if (!st.is_ok()) return st;
    // An expired lease means a lost runner only when its runner could have
    // renewed it: the server has been up, and this process connected to it,
    // for a whole lease. After an outage (the server restarted, or this node
    // cut off from it) every runner gets a lease's time to come back.
    const Micros connected = now.mono - tx.opened_at();
    for (int i = 0; i < r.rows(); ++i) {
      const Job j = job_of(r, i);
      const RunnerRef runner{int32_t(r.i64(i, 18)), uint64_t(r.i64(i, 19))};
      const bool server_up_a_lease = r.i64(i, kJobColumnCount + 1) * 1'000'000 > lease_;
      bool gone = r.boolean(i, kJobColumnCount) && server_up_a_lease && connected > lease_;
      if (r.text(i, 16) == node_) {
        // A runner of this node: its pid tells at once, as the file
        // engine's does.
        const Micros silent = now.mono - std::max(r.i64(i, 17), quiet_since);
        if (runner.runner_pid <= 0 || runner.runner_start_ticks == 0) {
          gone = runner.runner_pid > 0 && process_start_ticks(runner.runner_pid) == 0;
          gone = gone || silent >= FileStore::kRunnerSilenceLimit;
        } else {
          gone = process_start_ticks(runner.runner_pid) != runner.runner_start_ticks;
        }
      }
      if (!gone) continue;
      bool changed = false;
      st = tx.end(j, JobState::lost, now, ", lease_expires = NULL",
                  " AND state = 3 AND runner_pid = $3 AND runner_ticks = $4",
                  {num(runner.runner_pid), num(int64_t(runner.runner_start_ticks))}, &changed,
                  r.i64(i, 17), r.text(i, 16));
      if (!st.is_ok()) return st;
      if (!changed) continue;
      Job after;
      if (!(st = tx.load(j.id, &after)).is_ok()) return st;
      lost.push_back(LostJob{after, runner});
    }
    return Status::ok();
  });
  if (st.is_ok()) ended->insert(ended->end(), lost.begin(), lost.end());
  return st;
}

Status PgStore::expire(uint64_t id, const Instant& now) {
  return transact(Kind::write, [&](Tx& tx) {
    Job j;
    Status st = tx.load(id, &j);
    if (!st.is_ok()) return st;
    if (j.state != JobState::waiting && j.state != JobState::queued)
      return job_not_found(id, "is neither waiting nor queued");
    bool changed = false;
    return tx.end(j, JobState::expired, now, "", "", {}, &changed);
  });
}

Status PgStore::trim_history(uint32_t keep, std::vector<uint64_t>* dropped) {
  std::vector<uint64_t> ids;
  Status st = transact(Kind::write, [&](Tx& tx) {
    PgResult r;
    Status st = tx.run(
        "DELETE FROM deploy_jobs WHERE id IN (SELECT id FROM deploy_jobs WHERE state > 3 "
        "ORDER BY id DESC OFFSET $1) RETURNING id",
        {num(keep)}, &r);
    if (!st.is_ok()) return st;
    for (int i = 0; i < r.rows(); ++i) ids.push_back(uint64_t(r.i64(i, 0)));
    if (!ids.empty()) tx.bump();
    return st;
  });
  if (st.is_ok() && dropped) dropped->insert(dropped->end(), ids.begin(), ids.end());
  return st;
}

// Claims need no transition lock: each row is taken by one transaction
// (SKIP LOCKED), and held for its attempt by claimed_by and claim_expires.
Status PgStore::claim_notifications(const Instant& now, size_t max,
                                    std::vector<NotificationClaim>* out, Micros* next_due) {
  std::vector<NotificationClaim> claims;
  Micros due_in = -1;
  Status st = transact(
      Kind::write,
      [&](Tx& tx) {
        claims.clear();
        PgResult r;
        Status st = tx.run(
            "WITH due AS (SELECT job_id, idx FROM deploy_notifications WHERE state = 1 AND due <= "
            "now() AND (claim_expires IS NULL OR claim_expires <= now()) ORDER BY due LIMIT $2 "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE deploy_notifications n SET claimed_by = $1, claim_expires = now() + "
            "make_interval(secs => $3::double precision / 1000000) FROM due WHERE n.job_id = "
            "due.job_id AND n.idx = due.idx RETURNING n.job_id, n.idx, n.attempts",
            {node_, num(int64_t(max)), num(kNotificationClaimHold)}, &r);
        if (!st.is_ok()) return st;
        for (int i = 0; i < r.rows(); ++i) {
          NotificationClaim c;
          c.index = uint32_t(r.i64(i, 1));
          c.attempt = uint32_t(r.i64(i, 2)) + 1;
          if (!(st = tx.load(uint64_t(r.i64(i, 0)), &c.job)).is_ok()) return st;
          claims.push_back(std::move(c));
        }
        PgResult next;
        st = tx.run(
            "SELECT (extract(epoch FROM min(GREATEST(due, COALESCE(claim_expires, due))) - now()) "
            "* 1000000)::bigint FROM deploy_notifications WHERE state = 1 AND due IS NOT NULL",
            {}, &next);
        if (st.is_ok() && !next.null(0, 0)) due_in = std::max<int64_t>(0, next.i64(0, 0));
        return st;
      },
      0, false);
  if (!st.is_ok()) return st;
  *out = std::move(claims);
  *next_due = due_in < 0 ? 0 : now.mono + due_in;
  return st;
}

Status PgStore::record_notification(const NotificationClaim& claim, std::optional<int> status,
                                    const NotificationDecision& decision, const Instant& now) {
  return transact(
      Kind::write,
      [&](Tx& tx) {
        const std::string id = num(int64_t(claim.job.id));
        PgResult r;
        Status st = tx.run(
            "UPDATE deploy_notifications SET state = $3::smallint, attempts = $4::int, status = "
            "$5::int, due = CASE WHEN $3::smallint = 1 THEN now() + make_interval(secs => "
            "$6::double precision / 1000000) END, claimed_by = NULL, claim_expires = NULL WHERE "
            "job_id = $1 AND idx = $2 AND state = 1 AND attempts = $4::int - 1 AND claimed_by = $7 "
            "RETURNING job_id",
            {id, num(claim.index), num(int(decision.state)), num(claim.attempt),
             status ? Param(num(*status)) : Param(),
             num(std::max<Micros>(0, decision.retry_at - now.mono)), node_},
            &r);
        if (!st.is_ok()) return st;
        if (r.rows() == 0) {
          Job j;
          if (!(st = tx.load(claim.job.id, &j)).is_ok()) return st;
          return Status::error("notification " + delivery_id(claim.job.id, claim.index) +
                                   " is no longer held by this attempt",
                               kNotOwner);
        }
        tx.change("UPDATE deploy_jobs SET change_no = (SELECT bumped FROM m) WHERE id = $1", {id});
        return st;
      },
      0, false);
}

namespace {

// The job's row, locked against a rescue or a finish until the end of the
// transaction, when `runner` of this node still runs it.
Status lock_for_output(PgStore::Tx& tx, uint64_t id, const RunnerRef& runner) {
  PgResult r;
  Status st = tx.run(
      "SELECT 1 FROM deploy_jobs WHERE id = $1 AND state = 3 AND runner_pid = $2 AND "
      "runner_ticks = $3 AND node = $4 FOR SHARE",
      {num(int64_t(id)), num(runner.runner_pid), num(int64_t(runner.runner_start_ticks)), tx.node},
      &r);
  if (st.is_ok() && r.rows() == 0) return job_not_owned(id);
  return st;
}

int64_t be64(const PgResult& r, int row, int col) {
  uint64_t v = 0;
  std::memcpy(&v, PQgetvalue(r.raw(), row, col), sizeof v);
  return int64_t(be64toh(v));
}

}  // namespace

// A job's output on its way to deploy_output (open_output).
class PgStore::Output : public JobOutput {
 public:
  Output(PgStore& store, uint64_t id, const RunnerRef& runner, uint64_t size)
      : store_(store), id_(id), runner_(runner), flushed_(size) {}

  void append(std::string_view data) override {
    if (data.empty()) return;
    if (closed_ || lost_ > 0 || pending_.size() + data.size() > kOutputBuffer - kReserve) {
      lost_ += data.size();  // from that byte on
      return;
    }
    pending_.append(data);
    // Written as it comes in chunks; while the database is away, tried
    // again at most once a second.
    if (pending_.size() >= kOutputChunk && mono_now() >= retry_at_) {
      if (!flush().is_ok()) retry_at_ = mono_now() + 1000000;
    }
  }
  uint64_t size() const override { return flushed_ + pending_.size(); }
  bool incomplete() const override { return lost_ > 0; }

  Status flush() override {
    if (pending_.empty()) return Status::ok();
    Status st = store_.transact(
        Kind::write,
        [&](Tx& tx) {
          Status st = lock_for_output(tx, id_, runner_);
          for (size_t at = 0; st.is_ok() && at < pending_.size(); at += kOutputChunk)
            tx.put_chunk(id_, flushed_ + at, std::string_view(pending_).substr(at, kOutputChunk));
          return st;
        },
        0, false);
    if (st.is_ok() || st.code() == kNotOwner) {
      // Written, or the job is no longer this runner's: its output is not
      // wanted any more.
      if (st.is_ok()) flushed_ += pending_.size();
      pending_.clear();
    }
    return st;
  }

  Status close() override {
    if (closed_) return flush();
    if (lost_ > 0)
      pending_ += "\ndeploy: output lost: the job store could not keep it; " +
                  std::to_string(lost_) + " bytes lost\n";
    closed_ = true;
    return flush();
  }

 private:
  static constexpr size_t kReserve = 256;  // for the last line
  PgStore& store_;
  const uint64_t id_;
  const RunnerRef runner_;
  uint64_t flushed_;
  std::string pending_;
  uint64_t lost_ = 0;
  bool closed_ = false;
  Micros retry_at_ = 0;
};

Status PgStore::open_output(uint64_t id, const RunnerRef& runner, std::unique_ptr<JobOutput>* out) {
  uint64_t size = 0;
  Status st = transact(
      Kind::write,
      [&](Tx& tx) {
        Status st = lock_for_output(tx, id, runner);
        PgResult r;
        if (st.is_ok())
          st = tx.run(
              "SELECT COALESCE(max(\"offset\" + octet_length(chunk)), -1) FROM deploy_output "
              "WHERE job_id = $1",
              {num(int64_t(id))}, &r);
        if (!st.is_ok()) return st;
        const int64_t end = r.i64(0, 0);
        size = end > 0 ? uint64_t(end) : 0;
        // An empty first chunk: the output exists (read_output), empty.
        if (end < 0) tx.put_chunk(id, 0, "");
        return st;
      },
      0, false);
  if (st.is_ok()) *out = std::make_unique<Output>(*this, id, runner, size);
  return st;
}

Status PgStore::read_output(uint64_t id, uint64_t offset, size_t max, std::string* out) {
  out->clear();
  std::string text;
  Status st = transact(Kind::single, [&](Tx& tx) {
    // One statement: the chunks, and a row of offset -1 first when the job
    // has no output at all.
    PgResult r;
    Status st = tx.run(
        "SELECT -1::bigint, ''::bytea WHERE NOT EXISTS (SELECT 1 FROM deploy_output WHERE job_id "
        "= $1) UNION ALL (SELECT \"offset\", chunk FROM deploy_output WHERE job_id = $1 AND "
        "\"offset\" <= $2::bigint + $3::bigint AND \"offset\" + octet_length(chunk) >= $2::bigint "
        "ORDER BY \"offset\")",
        {num(int64_t(id)), num(int64_t(offset)), num(int64_t(max))}, &r, true);
    if (!st.is_ok()) return st;
    for (int i = 0; i < r.rows() && text.size() < max; ++i) {
      const int64_t at = be64(r, i, 0);
      if (at < 0) return job_not_found(id, "has no output");
      const std::string chunk = r.text(i, 1);
      const uint64_t from = offset + text.size();
      if (uint64_t(at) > from || uint64_t(at) + chunk.size() <= from) continue;  // a gap, or before
      text.append(chunk, size_t(from - uint64_t(at)), max - text.size());
    }
    return Status::ok();
  });
  if (st.is_ok()) *out = std::move(text);
  return st;
}

Status PgStore::output_size(uint64_t id, uint64_t* size) {
  *size = 0;
  uint64_t end = 0;
  Status st = transact(Kind::single, [&](Tx& tx) {
    PgResult r;
    Status st =
        tx.run("SELECT max(\"offset\" + octet_length(chunk)) FROM deploy_output WHERE job_id = $1",
               {num(int64_t(id))}, &r, true);
    if (!st.is_ok()) return st;
    if (r.rows() == 0 || r.null(0, 0)) return job_not_found(id, "has no output");
    end = uint64_t(be64(r, 0, 0));
    return Status::ok();
  });
  if (st.is_ok()) *size = end;
  return st;
}

Status PgStore::get(uint64_t id, Job* out) {
  return transact(Kind::single, [&](Tx& tx) { return tx.load(id, out); });
}

Status PgStore::list(const JobsQuery& query, const TargetFilter& readable, std::vector<Job>* out) {
  out->clear();
  return transact(Kind::read, [&](Tx& tx) {
    out->clear();
    // Pages of rows until `limit` readable ones, or none are left.
    uint64_t before = query.before;
    for (;;) {
      PgResult r;
      Status st =
          tx.run(std::string("SELECT ") + kJobColumns +
                     " FROM deploy_jobs WHERE ($1::bigint = 0 OR id < $1) AND ($2::text "
                     "IS NULL OR target = $2) AND ($3::int IS NULL OR state = $3) "
                     "ORDER BY id DESC LIMIT $4",
                 {num(int64_t(before)), query.target,
                  query.state ? Param(num(int(*query.state))) : Param(), num(int64_t(query.limit))},
                 &r);
      if (!st.is_ok()) return st;
      for (Job& j : jobs_of(r)) {
        before = j.id;
        if (out->size() < query.limit && (!readable || readable(j.target))) out->push_back(j);
      }
      if (out->size() >= query.limit || r.rows() < int(query.limit)) return Status::ok();
    }
  });
}

Status PgStore::newest_per_target(const std::vector<std::string>& targets, std::vector<Job>* out) {
  out->clear();
  // The names as one text[] literal, each quoted.
  std::string names = "{";
  for (const std::string& t : targets) {
    if (names.size() > 1) names += ',';
    names += '"';
    for (char c : t) {
      if (c == '"' || c == '\\') names += '\\';
      names += c;
    }
    names += '"';
  }
  names += '}';
  return transact(Kind::single, [&](Tx& tx) {
    out->clear();
    PgResult r;
    Status st = tx.run(std::string("SELECT j.* FROM unnest($1::text[]) WITH ORDINALITY AS t(name, "
                                   "n) CROSS JOIN LATERAL (SELECT ") +
                           kJobColumns +
                           " FROM deploy_jobs WHERE target = t.name ORDER BY id DESC LIMIT 1) j "
                           "ORDER BY t.n",
                       {names}, &r);
    if (st.is_ok()) *out = jobs_of(r);
    return st;
  });
}

Status PgStore::overview(const HistoryPage& page, const TargetFilter& readable, Overview* out) {
  Overview o;
  Status st = transact(Kind::read, [&](Tx& tx) {
    o = Overview();
    PgResult r;
    Status st = tx.run("SELECT change_no FROM deploy_meta", {}, &r);
    if (!st.is_ok()) return st;
    o.seen = uint64_t(r.i64(0, 0));
    std::vector<Job> jobs;
    if (!(st = tx.unfinished(&jobs)).is_ok()) return st;
    std::map<uint64_t, Job> shown;
    for (Job& j : jobs)
      if (!readable || readable(j.target)) shown[j.id] = j;
    // Each target's newest finished job.
    if (!(st = tx.run(std::string("SELECT DISTINCT ON (target) ") + kJobColumns +
                          " FROM deploy_jobs WHERE state > 3 ORDER BY target, id DESC",
                      {}, &r))
             .is_ok())
      return st;
    for (Job& j : jobs_of(r))
      if (!readable || readable(j.target)) shown[j.id] = j;
    // The page, and whether a matching one is below it.
    uint64_t before = page.before;
    for (bool done = false; !done;) {
      if (!(st = tx.run(std::string("SELECT ") + kJobColumns +
                            " FROM deploy_jobs WHERE state > 3 AND ($1::bigint = 0 OR id < $1) "
                            "AND ($2::text IS NULL OR target = $2) AND ($3::int IS NULL OR "
                            "state = $3) ORDER BY id DESC LIMIT 200",
                        {num(int64_t(before)), page.target,
                         page.state ? Param(num(int(*page.state))) : Param()},
                        &r))
               .is_ok())
        return st;
      done = r.rows() < 200;
      for (Job& j : jobs_of(r)) {
        before = j.id;
        if (readable && !readable(j.target)) continue;
        if (o.history.size() >= page.rows) {
          o.older = true;
          done = true;
          break;
        }
        o.history.insert(j.id);
        shown[j.id] = j;
      }
    }
    for (auto& [id, j] : shown) o.jobs.push_back(std::move(j));
    return Status::ok();
  });
  if (st.is_ok()) *out = std::move(o);
  return st;
}

Status PgStore::unfinished(const GroupByOf& group_by, std::vector<PendingJob>* jobs) {
  return transact(Kind::single, [&](Tx& tx) {
    std::vector<Job> all;
    std::set<uint64_t> elsewhere;
    Status st = tx.unfinished(&all, &elsewhere);
    if (st.is_ok()) *jobs = pending_of(all, group_by, Instant::now(), elsewhere);
    return st;
  });
}

Status PgStore::changes_since(uint64_t since, std::vector<Job>* changed, uint64_t* now) {
  return transact(Kind::single, [&](Tx& tx) {
    // One statement: the jobs and the change number of one snapshot.
    PgResult r;
    Status st = tx.run(std::string("SELECT j.*, m.change_no FROM ") + kChangeRow +
                           " LEFT JOIN LATERAL (SELECT " + kJobColumns +
                           " FROM deploy_jobs WHERE change_no > $1) j ON true ORDER BY j.change_no",
                       {num(int64_t(since))}, &r);
    if (!st.is_ok()) return st;
    changed->clear();
    for (int i = 0; i < r.rows(); ++i) {
      *now = uint64_t(r.i64(i, kJobColumnCount));
      if (!r.null(i, 0)) changed->push_back(job_of(r, i));
    }
    return Status::ok();
  });
}

Status PgStore::counters(StoreCounters* out) {
  StoreCounters c{};
  Status st = transact(Kind::read, [&](Tx& tx) {
    c = StoreCounters{};
    // Both reads in the pipeline of BEGIN.
    PgResult r, pending;
    tx.send("SELECT scope, name, value FROM deploy_counters ORDER BY scope", {}, &r);
    tx.send_unfinished(&pending);
    Status st = tx.flush();
    if (!st.is_ok()) return st;
    std::map<std::string, TargetCounters> targets;
    for (int i = 0; i < r.rows(); ++i) {
      const std::string scope = r.text(i, 0), name = r.text(i, 1);
      const uint64_t value = uint64_t(r.i64(i, 2));
      const auto index = [&](const char* prefix, size_t bound) -> std::optional<size_t> {
        const size_t n = strlen(prefix);
        if (name.compare(0, n, prefix) != 0) return std::nullopt;
        const size_t k = size_t(std::strtoul(name.c_str() + n, nullptr, 10));
        return k < bound ? std::optional<size_t>(k) : std::nullopt;
      };
      if (scope.empty()) {
        if (name == "accepted") c.counters.accepted = value;
        if (name == "coalesced") c.counters.coalesced = value;
        if (name == "ignored") c.ignored = value;
        if (auto k = index("finished.", 16)) c.counters.finished[*k] = value;
        if (auto k = index("rejected.", 16)) c.counters.rejected[*k] = value;
        continue;
      }
      TargetCounters& t = targets[scope];
      if (t.target.empty()) {
        t.target = scope;
        t.stats = TargetStats{};
        store_text(t.stats.target, sizeof t.stats.target, scope);
      }
      if (name == "last_success") t.last_success = Micros(value);
      if (name == "duration_sum") t.stats.duration_sum_micros = value;
      if (name == "duration_count") t.stats.duration_count = value;
      if (auto k = index("finished.", 16)) t.stats.finished[*k] = value;
      if (auto k = index("bucket.", kDurationBuckets + 1)) t.stats.duration_buckets[*k] = value;
    }
    for (auto& [name, t] : targets) c.targets.push_back(std::move(t));
    tx.unfinished_of(pending, &c.unfinished, nullptr, nullptr);
    return st;
  });
  if (st.is_ok()) *out = std::move(c);
  return st;
}

uint64_t PgStore::read_seq(const char* column) {
  uint64_t seq = 0;
  const Status st = transact(Kind::single, [&](Tx& tx) {
    PgResult r;
    Status st = tx.run(std::string("SELECT ") + column + " FROM deploy_meta", {}, &r);
    if (st.is_ok()) seq = uint64_t(r.i64(0, 0));
    return st;
  });
  return st.is_ok() ? seq : 0;
}

uint64_t PgStore::change_seq() { return read_seq("change_no"); }
uint64_t PgStore::output_seq() { return read_seq("output_no"); }

// LISTEN on a connection of its own, a poll() of its socket of at most a
// second, and the number read again after each wake or poll: a NOTIFY that
// was lost (or a listener that cannot connect) costs at most a second.
bool PgStore::wait_for(const char* column, uint64_t seen, Micros timeout) {
  const Micros deadline = mono_now() + timeout;
  for (;;) {
    const uint64_t now_seq = read_seq(column);
    if (now_seq != 0 && now_seq != seen) return true;
    const Micros left = deadline - mono_now();
    if (left <= 0) return false;
    const int wait_ms = int(std::min<Micros>(left, 1000000) / 1000) + 1;
    // One thread at a time polls the listener; the others sleep until it
    // hears a notification, or for the fallback's second.
    std::unique_lock<std::mutex> hold(listen_mutex_, std::try_to_lock);
    if (!hold.owns_lock()) {
      std::unique_lock<std::mutex> wake(wake_mutex_);
      const uint64_t heard = wakes_;
      wake_.wait_for(wake, std::chrono::milliseconds(wait_ms), [&] { return wakes_ != heard; });
      continue;
    }
    if (!listener_ || !listener_->ok()) {
      listener_ = std::make_unique<PgConnection>(conninfo_);
      PGresult* r = listener_->ok()
                        ? PQexec(listener_->get(), (std::string("LISTEN ") + kChannel).c_str())
                        : nullptr;
      const bool listening = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
      if (!listening) {
        listener_.reset();
      } else {
        // A change committed before LISTEN took effect notified nobody:
        // look again before sleeping on the socket.
        continue;
      }
    }
    if (!listener_) {
      hold.unlock();
      poll(nullptr, 0, wait_ms);
      continue;
    }
    pollfd p{PQsocket(listener_->get()), POLLIN, 0};
    poll(&p, 1, wait_ms);
    if (!PQconsumeInput(listener_->get())) {
      listener_.reset();
      continue;
    }
    bool heard = false;
    while (PGnotify* n = PQnotifies(listener_->get())) {
      PQfreemem(n);
      heard = true;
    }
    if (heard) {
      {
        std::lock_guard<std::mutex> wake(wake_mutex_);
        ++wakes_;
      }
      wake_.notify_all();
    }
  }
}

bool PgStore::wait_for_change(uint64_t seen, Micros timeout) {
  return wait_for("change_no", seen, timeout);
}
bool PgStore::wait_for_output(uint64_t seen, Micros timeout) {
  return wait_for("output_no", seen, timeout);
}

}  // namespace deploy

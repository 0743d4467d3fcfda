#include "master/store.h"

#include <sqlite3.h>

#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace prs::master {
namespace {

// The enums as the SQL below spells them; the asserts keep the two equal.
#define PRS_SQL_PENDING "0"
#define PRS_SQL_SUCCEEDED "2"
#define PRS_SQL_FAILED "3"
#define PRS_SQL_PLAN "1"
static_assert(static_cast<int>(TaskState::kPending) == 0);
static_assert(static_cast<int>(TaskState::kSucceeded) == 2);
static_assert(static_cast<int>(TaskState::kFailed) == 3);
static_assert(static_cast<int>(TaskKind::kPlan) == 1);

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT UNIQUE,
  spec BLOB NOT NULL,
  snapshot BLOB NOT NULL,
  state INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  first_error TEXT NOT NULL DEFAULT '',
  submit_ms INTEGER NOT NULL DEFAULT 0,
  start_ms INTEGER NOT NULL DEFAULT 0,
  end_ms INTEGER NOT NULL DEFAULT 0,
  mb_created INTEGER NOT NULL DEFAULT 0,
  listing_done INTEGER NOT NULL DEFAULT 0,
  items_total INTEGER NOT NULL DEFAULT 0,
  mb_processed INTEGER NOT NULL DEFAULT 0,
  mb_failed INTEGER NOT NULL DEFAULT 0,
  items_succeeded INTEGER NOT NULL DEFAULT 0,
  items_failed INTEGER NOT NULL DEFAULT 0,
  rows_written INTEGER NOT NULL DEFAULT 0,
  retries INTEGER NOT NULL DEFAULT 0,
  output_length INTEGER NOT NULL DEFAULT 0,
  mb_listed INTEGER NOT NULL DEFAULT 0,  -- mini-batches made by the lister (not from plans)
  groups_done INTEGER NOT NULL DEFAULT 0,  -- partition_keys: the groups' mini-batches exist
  output_started INTEGER NOT NULL DEFAULT 0,  -- the job made its output file (an earlier one moved aside)
  output_id TEXT NOT NULL DEFAULT '',  -- that file's "device:inode": the file the job reopens
  input_fingerprint TEXT NOT NULL DEFAULT '',  -- allow_reuse: the listed inputs' names, sizes, mtimes
  reused_from TEXT NOT NULL DEFAULT '',  -- allow_reuse: the job whose result this one took
  first_error_log TEXT NOT NULL DEFAULT '',  -- the first error's file in the log tree
  owner TEXT NOT NULL DEFAULT '');  -- the principal who submitted the job
CREATE TABLE IF NOT EXISTS tasks(
  job_seq INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  items BLOB NOT NULL,  -- the mini-batch's paths or descriptors, NUL-separated
  item_count INTEGER NOT NULL,  -- -1 until known (tabular)
  state INTEGER NOT NULL,
  tries INTEGER NOT NULL DEFAULT 0,
  kind INTEGER NOT NULL DEFAULT 0,  -- TaskKind
  plan BLOB,  -- a succeeded partition_keys plan: the file's key combinations
  PRIMARY KEY(job_seq, task_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts(
  job_seq INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  result BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts(job_seq);
)sql";

using StatementCache = std::unordered_map<std::string, sqlite3_stmt*>;

// RAII prepared statement. Methods return false/NOT OK on SQLite errors.
// With a cache, the statement is prepared once per store and kept there: it
// is taken out while in use (a nested use of the same SQL prepares its own)
// and put back reset.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, StatementCache* cache = nullptr) : db_(db), cache_(cache) {
    if (cache_ != nullptr) {
      key_ = sql;
      auto it = cache_->find(key_);
      if (it != cache_->end() && it->second != nullptr) {
        stmt_ = std::exchange(it->second, nullptr);
        return;
      }
    }
    rc_ = sqlite3_prepare_v3(db, sql, -1, cache_ != nullptr ? SQLITE_PREPARE_PERSISTENT : 0, &stmt_,
                             nullptr);
  }
  ~Stmt() {
    if (cache_ != nullptr && stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
      sqlite3_stmt*& slot = (*cache_)[key_];
      if (slot == nullptr) {
        slot = stmt_;
        return;
      }
    }
    sqlite3_finalize(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status status() const { return rc_ == SQLITE_OK ? absl::OkStatus() : Error(); }
  Stmt& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false; errors set status().
  bool Step() {
    if (rc_ != SQLITE_OK) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) rc_ = rc;
    return false;
  }
  absl::Status Run() {
    Step();
    return status();
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, col));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
  }
  absl::Status Error() const {
    return absl::InternalError(absl::StrCat("state database: ", sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  StatementCache* cache_;
  std::string key_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    ok_ = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (ok_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status Commit() {
    if (!ok_) return absl::InternalError(absl::StrCat("state database: ", sqlite3_errmsg(db_)));
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return absl::InternalError(absl::StrCat("state database commit: ", sqlite3_errmsg(db_)));
    }
    done_ = true;
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  bool ok_ = false;
  bool done_ = false;
};

constexpr const char* kJobColumns =
    "seq, job_id, spec, state, reason, submit_ms, start_ms, end_ms, mb_created, listing_done, "
    "items_total, mb_processed, mb_failed, items_succeeded, items_failed, rows_written, retries, "
    "output_length, first_error, mb_listed, groups_done, output_started, input_fingerprint, "
    "reused_from, output_id, first_error_log, owner, "
    "(SELECT COALESCE(MAX(task_id) + 1, 0) FROM tasks WHERE tasks.job_seq = jobs.seq), "
    "(SELECT COUNT(*) FROM tasks WHERE tasks.job_seq = jobs.seq AND kind = " PRS_SQL_PLAN
    " AND state = " PRS_SQL_PENDING
    "), "
    "(SELECT COUNT(*) FROM tasks WHERE tasks.job_seq = jobs.seq AND kind = " PRS_SQL_PLAN ")";

StoredJob ReadJob(const Stmt& s) {
  StoredJob j;
  j.seq = s.Int(0);
  j.job_id = s.Text(1);
  j.spec.ParseFromString(s.Text(2));
  j.state = static_cast<v1::JobState>(s.Int(3));
  j.reason = s.Text(4);
  j.submit_ms = s.Int(5);
  j.start_ms = s.Int(6);
  j.end_ms = s.Int(7);
  j.counts.set_mini_batches_created(s.Int(8));
  j.counts.set_listing_done(s.Int(9) != 0);
  j.counts.set_items_total(s.Int(10));
  j.counts.set_mini_batches_processed(s.Int(11));
  j.counts.set_mini_batches_failed(s.Int(12));
  j.counts.set_items_succeeded(s.Int(13));
  j.counts.set_items_failed(s.Int(14));
  j.counts.set_rows_written(s.Int(15));
  j.counts.set_retries(s.Int(16));
  j.output_length = s.Int(17);
  j.first_error = s.Text(18);
  j.listed = s.Int(19);
  j.groups_done = s.Int(20) != 0;
  j.output_started = s.Int(21) != 0;
  j.input_fingerprint = s.Text(22);
  j.reused_from = s.Text(23);
  j.output_id = s.Text(24);
  j.first_error_log = s.Text(25);
  j.owner = s.Text(26);
  j.next_task_id = s.Int(27);
  j.plans_pending = s.Int(28);
  j.counts.set_plans(s.Int(29));
  return j;
}

}  // namespace

absl::StatusOr<Durability> ParseDurability(const std::string& text) {
  if (text == "process") return Durability::kProcess;
  if (text == "machine") return Durability::kMachine;
  return absl::InvalidArgumentError(absl::StrCat(
      "--durability '", text,
      "': give process (safe against any crash of the master) or machine (also against a crash "
      "of the machine, e.g. a power loss)"));
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, Durability durability) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat("cannot open the state database ", path, ": ",
                                                      msg, "; check that --state-dir is writable"));
  }
  std::unique_ptr<Store> store(new Store(db));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  // WAL + synchronous=NORMAL: a commit survives a crash of the master process;
  // an OS crash may lose the last commits, together with the output bytes they
  // covered. FULL: the WAL is synced at each commit, so it survives that too.
  const char* synchronous =
      durability == Durability::kMachine ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  // One master per state folder, and nothing else writes it: the database is
  // locked once, for the master's life, not around every transaction (no
  // fcntl lock and unlock per commit; WAL without shared memory). A second
  // master on the folder is refused (SQLITE_BUSY).
  for (const char* sql :
       {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=WAL", synchronous, kSchema}) {
    if (auto s = store->Exec(sql); !s.ok()) {
      if (sqlite3_errcode(db) != SQLITE_BUSY) return s;
      return absl::FailedPreconditionError(absl::StrCat(
          "the state database ", path,
          " is in use by another prs-master (or prs run) on this state folder; give each "
          "master a --state-dir of its own"));
    }
  }
  // An older database gets the new columns, in one transaction.
  if (auto s = store->Migrate(); !s.ok()) return s;
  if (auto s = store->Exec("INSERT INTO meta(key, value) VALUES('epoch', 1) "
                           "ON CONFLICT(key) DO UPDATE SET value = value + 1");
      !s.ok()) {
    return s;
  }
  Stmt q(db, "SELECT value FROM meta WHERE key = 'epoch'");
  if (q.Step()) store->epoch_ = q.Int(0);
  if (auto s = q.status(); !s.ok()) return s;
  return store;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

absl::Status Store::Migrate() {
  const auto has_column = [&](const char* table, const char* column) -> absl::StatusOr<bool> {
    Stmt q(db_,
           absl::StrCat("SELECT COUNT(*) FROM pragma_table_info('", table, "') WHERE name = '",
                        column, "'")
               .c_str(),
           &statements_);
    bool found = q.Step() && q.Int(0) > 0;
    if (auto s = q.status(); !s.ok()) return s;
    return found;
  };
  struct Step {
    const char* table;
    const char* column;
    const char* sql;  // adds the column and fills it in for the rows there
  };
  const Step steps[] = {
      // Tabular inputs: every task of an older job came from the lister.
      {"jobs", "mb_listed",
       "ALTER TABLE jobs ADD COLUMN mb_listed INTEGER NOT NULL DEFAULT 0;"
       "ALTER TABLE jobs ADD COLUMN groups_done INTEGER NOT NULL DEFAULT 0;"
       "ALTER TABLE tasks ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
       "ALTER TABLE tasks ADD COLUMN plan BLOB;"
       "UPDATE jobs SET mb_listed = mb_created;"},
      // Older jobs made their output file at submit (its identity unknown).
      {"jobs", "output_started",
       "ALTER TABLE jobs ADD COLUMN output_started INTEGER NOT NULL DEFAULT 0;"
       "UPDATE jobs SET output_started = 1;"},
      {"jobs", "output_id", "ALTER TABLE jobs ADD COLUMN output_id TEXT NOT NULL DEFAULT '';"},
      {"jobs", "input_fingerprint",
       "ALTER TABLE jobs ADD COLUMN input_fingerprint TEXT NOT NULL DEFAULT '';"},
      {"jobs", "reused_from", "ALTER TABLE jobs ADD COLUMN reused_from TEXT NOT NULL DEFAULT '';"},
      {"jobs", "first_error_log",
       "ALTER TABLE jobs ADD COLUMN first_error_log TEXT NOT NULL DEFAULT '';"},
      // Jobs of a master without tokens belong to "local".
      {"jobs", "owner", "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';"},
  };
  std::string sql;
  for (const Step& step : steps) {
    auto found = has_column(step.table, step.column);
    if (!found.ok()) return found.status();
    if (!*found) sql += step.sql;
  }
  if (sql.empty()) return absl::OkStatus();
  if (auto s = Exec(absl::StrCat("BEGIN IMMEDIATE;", sql, "COMMIT;").c_str()); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return absl::OkStatus();
}

absl::Status Store::SetOutputStarted(int64_t seq, const std::string& output_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "UPDATE jobs SET output_started = 1, output_id = ? WHERE seq = ?", &statements_);
  s.Bind(1, output_id).Bind(2, seq);
  return s.Run();
}

bool Store::IsJobOutput(const std::string& output_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT 1 FROM jobs WHERE output_started = 1 AND output_id = ? LIMIT 1",
         &statements_);
  q.Bind(1, output_id);
  return q.Step();
}

absl::Status Store::SetInputFingerprint(int64_t seq, const std::string& fingerprint) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "UPDATE jobs SET input_fingerprint = ? WHERE seq = ?", &statements_);
  s.Bind(1, fingerprint).Bind(2, seq);
  return s.Run();
}

absl::Status Store::CopyResult(int64_t seq, int64_t from_seq, const std::string& from_job_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "UPDATE jobs SET (mb_created, listing_done, items_total, mb_processed, mb_failed, "
         "items_succeeded, items_failed, rows_written, retries, output_length, input_fingerprint, "
         "mb_listed, output_id) = (SELECT mb_created, listing_done, items_total, mb_processed, "
         "mb_failed, items_succeeded, items_failed, rows_written, retries, output_length, "
         "input_fingerprint, mb_listed, output_id FROM jobs WHERE seq = ?), reused_from = ? "
         "WHERE seq = ?",
         &statements_);
  s.Bind(1, from_seq).Bind(2, from_job_id).Bind(3, seq);
  return s.Run();
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("state database: ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredJob> Store::CreateJob(const v1::JobSpec& spec,
                                           const v1::SourceSnapshot& snapshot, int64_t submit_ms,
                                           const std::string& owner) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  Stmt ins(db_, "INSERT INTO jobs(spec, snapshot, state, submit_ms, owner) VALUES(?, ?, ?, ?, ?)",
           &statements_);
  ins.BindBlob(1, spec.SerializeAsString())
      .BindBlob(2, snapshot.SerializeAsString())
      .Bind(3, int64_t{v1::QUEUED})
      .Bind(4, submit_ms)
      .Bind(5, owner);
  if (auto s = ins.Run(); !s.ok()) return s;
  const int64_t seq = sqlite3_last_insert_rowid(db_);
  const std::string job_id = absl::StrCat(spec.name(), "-", seq);
  Stmt upd(db_, "UPDATE jobs SET job_id = ? WHERE seq = ?", &statements_);
  upd.Bind(1, job_id).Bind(2, seq);
  if (auto s = upd.Run(); !s.ok()) return s;
  if (auto s = tx.Commit(); !s.ok()) return s;
  StoredJob job;
  job.seq = seq;
  job.job_id = job_id;
  job.spec = spec;
  job.submit_ms = submit_ms;
  job.owner = owner;
  return job;
}

absl::Status Store::UpdateJobState(int64_t seq, const JobStateRow& row) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "UPDATE jobs SET state = ?, reason = ?, first_error = ?, first_error_log = ?, "
         "start_ms = ?, end_ms = ? WHERE seq = ?",
         &statements_);
  s.Bind(1, int64_t{row.state}).Bind(2, row.reason).Bind(3, row.first_error);
  s.Bind(4, row.first_error_log).Bind(5, row.start_ms).Bind(6, row.end_ms).Bind(7, seq);
  return s.Run();
}

absl::Status Store::InsertTasksLocked(int64_t seq, const std::vector<NewTask>& tasks) {
  Stmt ins(db_,
           "INSERT INTO tasks(job_seq, task_id, items, item_count, state, kind) "
           "VALUES(?, ?, ?, ?, " PRS_SQL_PENDING ", ?)",
           &statements_);
  int64_t items = 0;
  for (const auto& t : tasks) {
    ins.Reset();
    ins.Bind(1, seq)
        .Bind(2, t.task_id)
        .BindBlob(3, absl::StrJoin(t.items, std::string(1, '\0')))
        .Bind(4, t.item_count)
        .Bind(5, static_cast<int64_t>(t.kind));
    if (auto s = ins.Run(); !s.ok()) return s;
    items += std::max<int64_t>(0, t.item_count);
  }
  Stmt upd(db_,
           "UPDATE jobs SET mb_created = mb_created + ?, items_total = items_total + ? "
           "WHERE seq = ?",
           &statements_);
  upd.Bind(1, static_cast<int64_t>(tasks.size())).Bind(2, items).Bind(3, seq);
  return upd.Run();
}

absl::Status Store::InsertTasks(int64_t seq, const std::vector<NewTask>& tasks, TaskSource source,
                                bool done) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (auto s = InsertTasksLocked(seq, tasks); !s.ok()) return s;
  if (source == TaskSource::kLister) {
    Stmt upd(db_,
             "UPDATE jobs SET mb_listed = mb_listed + ?, listing_done = MAX(listing_done, ?) "
             "WHERE seq = ?",
             &statements_);
    upd.Bind(1, static_cast<int64_t>(tasks.size())).Bind(2, done ? 1 : 0).Bind(3, seq);
    if (auto s = upd.Run(); !s.ok()) return s;
  } else {
    Stmt upd(db_, "UPDATE jobs SET groups_done = MAX(groups_done, ?) WHERE seq = ?", &statements_);
    upd.Bind(1, done ? 1 : 0).Bind(2, seq);
    if (auto s = upd.Run(); !s.ok()) return s;
  }
  return tx.Commit();
}

absl::StatusOr<StoredTask> Store::GetTask(int64_t seq, int64_t task_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT items, item_count, kind FROM tasks WHERE job_seq = ? AND task_id = ?",
         &statements_);
  q.Bind(1, seq).Bind(2, task_id);
  if (!q.Step()) {
    if (auto s = q.status(); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("mini-batch ", task_id, " of job ", seq, " not found"));
  }
  StoredTask task;
  task.item_count = q.Int(1);
  task.kind = static_cast<TaskKind>(q.Int(2));
  const std::string items = q.Text(0);
  // NUL separates items: it is the one byte a path cannot hold.
  if (!items.empty()) task.items = absl::StrSplit(items, '\0');
  return task;
}

absl::StatusOr<std::vector<StoredPlan>> Store::KeyPlans(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT task_id, items, plan FROM tasks WHERE job_seq = ? AND kind = " PRS_SQL_PLAN
         " AND state = " PRS_SQL_SUCCEEDED
         " "
         "ORDER BY task_id",
         &statements_);
  q.Bind(1, seq);
  std::vector<StoredPlan> out;
  while (q.Step()) out.push_back(StoredPlan{q.Int(0), q.Text(1), q.Text(2)});
  if (auto s = q.status(); !s.ok()) return s;
  return out;
}

absl::Status Store::CommitAttempts(int64_t seq, const std::vector<TaskCommit>& commits,
                                   const CountDeltas& d, const std::vector<NewTask>& new_tasks) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (auto s = InsertTasksLocked(seq, new_tasks); !s.ok()) return s;
  Stmt att(db_,
           "INSERT INTO attempts(job_seq, task_id, attempt, agent_id, node_id, result) "
           "VALUES(?, ?, ?, ?, ?, ?)",
           &statements_);
  Stmt task(db_,
            "UPDATE tasks SET state = ?, tries = ?, item_count = ?, plan = ? "
            "WHERE job_seq = ? AND task_id = ?",
            &statements_);
  for (const auto& c : commits) {
    v1::TaskResult r = c.attempt.result;
    r.clear_rows();
    att.Reset();
    att.Bind(1, seq)
        .Bind(2, c.attempt.task_id)
        .Bind(3, int64_t{c.attempt.attempt})
        .Bind(4, c.attempt.agent_id)
        .Bind(5, c.attempt.node_id)
        .BindBlob(6, r.SerializeAsString());
    if (auto s = att.Run(); !s.ok()) return s;
    task.Reset();
    task.Bind(1, static_cast<int64_t>(c.new_state))
        .Bind(2, int64_t{c.tries})
        .Bind(3, c.item_count)
        .BindBlob(4, c.plan)
        .Bind(5, seq)
        .Bind(6, c.attempt.task_id);
    if (auto s = task.Run(); !s.ok()) return s;
  }
  Stmt upd(db_,
           "UPDATE jobs SET mb_processed = mb_processed + ?, mb_failed = mb_failed + ?, "
           "items_succeeded = items_succeeded + ?, items_failed = items_failed + ?, "
           "rows_written = rows_written + ?, retries = retries + ?, "
           "output_length = output_length + ?, items_total = items_total + ? WHERE seq = ?",
           &statements_);
  upd.Bind(1, d.processed)
      .Bind(2, d.failed)
      .Bind(3, d.items_succeeded)
      .Bind(4, d.items_failed)
      .Bind(5, d.rows_written)
      .Bind(6, d.retries)
      .Bind(7, d.output_bytes)
      .Bind(8, d.items_total)
      .Bind(9, seq);
  if (auto s = upd.Run(); !s.ok()) return s;
  return tx.Commit();
}

absl::StatusOr<int64_t> Store::ResetFailedTasks(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  // A failed mini-batch of unknown records (item_count -1: a plan, or a file
  // never read) counted as one failed item, also added to items_total.
  Stmt sum(
      db_,
      "SELECT COUNT(*), COALESCE(SUM(MAX(item_count, 0)), 0), "
      "COALESCE(SUM(item_count < 0), 0) FROM tasks WHERE job_seq = ? AND state = " PRS_SQL_FAILED,
      &statements_);
  sum.Bind(1, seq);
  sum.Step();
  if (auto s = sum.status(); !s.ok()) return s;
  const int64_t n = sum.Int(0), unknown = sum.Int(2);
  const int64_t items = sum.Int(1) + unknown;
  Stmt reset(db_,
             "UPDATE tasks SET state = " PRS_SQL_PENDING
             ", tries = 0, "
             "item_count = CASE WHEN kind = " PRS_SQL_PLAN
             " THEN 0 ELSE item_count END "
             "WHERE job_seq = ? AND state = " PRS_SQL_FAILED,
             &statements_);
  reset.Bind(1, seq);
  if (auto s = reset.Run(); !s.ok()) return s;
  Stmt upd(db_,
           "UPDATE jobs SET mb_processed = mb_processed - ?, mb_failed = mb_failed - ?, "
           "items_failed = MAX(0, items_failed - ?), items_total = MAX(0, items_total - ?) "
           "WHERE seq = ?",
           &statements_);
  upd.Bind(1, n).Bind(2, n).Bind(3, items).Bind(4, unknown).Bind(5, seq);
  if (auto s = upd.Run(); !s.ok()) return s;
  if (auto s = tx.Commit(); !s.ok()) return s;
  return n;
}

absl::StatusOr<std::vector<StoredJob>> Store::LoadJobs() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE job_id IS NOT NULL ORDER BY seq")
             .c_str(),
         &statements_);
  std::vector<StoredJob> jobs;
  while (q.Step()) jobs.push_back(ReadJob(q));
  if (auto s = q.status(); !s.ok()) return s;
  return jobs;
}

absl::StatusOr<StoredJob> Store::LoadJob(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE seq = ?").c_str(),
         &statements_);
  q.Bind(1, seq);
  if (!q.Step()) {
    if (auto s = q.status(); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("job ", seq, " not found"));
  }
  return ReadJob(q);
}

absl::StatusOr<v1::SourceSnapshot> Store::GetSnapshot(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT snapshot FROM jobs WHERE seq = ?", &statements_);
  q.Bind(1, seq);
  if (!q.Step()) {
    if (auto s = q.status(); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("job ", seq, " not found"));
  }
  v1::SourceSnapshot snap;
  if (!snap.ParseFromString(q.Text(0))) return absl::DataLossError("corrupt source snapshot");
  return snap;
}

absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> Store::PendingTasks(int64_t seq) {
  absl::MutexLock lock(&mu_);
  // Plans first: they make the mini-batches the workers will need next.
  Stmt q(db_,
         "SELECT task_id, tries FROM tasks WHERE job_seq = ? AND state = " PRS_SQL_PENDING
         " "
         "ORDER BY kind DESC, task_id",
         &statements_);
  q.Bind(1, seq);
  std::vector<std::pair<int64_t, int32_t>> out;
  while (q.Step()) out.emplace_back(q.Int(0), static_cast<int32_t>(q.Int(1)));
  if (auto s = q.status(); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<AttemptRecord>> Store::ListAttempts(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT task_id, attempt, agent_id, node_id, result FROM attempts WHERE job_seq = ? "
         "ORDER BY rowid",
         &statements_);
  q.Bind(1, seq);
  std::vector<AttemptRecord> out;
  while (q.Step()) {
    AttemptRecord r;
    r.task_id = q.Int(0);
    r.attempt = static_cast<int32_t>(q.Int(1));
    r.agent_id = q.Text(2);
    r.node_id = q.Text(3);
    r.result.ParseFromString(q.Text(4));
    out.push_back(std::move(r));
  }
  if (auto s = q.status(); !s.ok()) return s;
  return out;
}

}  // namespace prs::master

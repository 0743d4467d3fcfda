#ifndef PRS_MASTER_STORE_H_
#define PRS_MASTER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "master/task.h"
#include "prs/v1/agent_service.pb.h"
#include "prs/v1/job.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace prs::master {

// What the store keeps of a job that the master also holds in memory
// (master/job.h: Job extends it with what lives only while the master runs).
struct JobRecord {
  int64_t seq = 0;
  std::string job_id;
  v1::JobSpec spec;
  v1::JobState state = v1::QUEUED;
  std::string reason;
  int64_t submit_ms = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  v1::JobCounts counts;
  // First error seen, for the root cause, and its file in the log tree.
  std::string first_error;
  std::string first_error_log;
  // Mini-batches the lister made (the rest came from plans).
  int64_t listed = 0;
  // partition_keys: the groups' mini-batches were made.
  bool groups_done = false;
  // One past the largest task id.
  int64_t next_task_id = 0;
  // Plan tasks not yet ended.
  int64_t plans_pending = 0;
  // The job made its output file (moving an earlier one aside): the file at
  // the output path is this job's, whatever its length.
  bool output_started = false;
  // allow_reuse: the listed inputs' names, sizes and mtimes, hashed; empty
  // until the listing is done.
  std::string input_fingerprint;
  // allow_reuse: the job that ran and whose result (and output file) this one
  // took instead of running; empty for a job that ran.
  std::string reused_from;
  // The principal who submitted it (docs/security.md).
  std::string owner;
};

// A job row: the record, and its output as the commits left it (the output
// committer's, master/output_committer.h).
struct StoredJob : JobRecord {
  // Bytes of the output file that belong to committed mini-batches.
  int64_t output_length = 0;
  // The file the job made, "device:inode"; empty when not known (an older
  // store).
  std::string output_id;
};

// What a commit survives (docs/architecture.md, "Exactly-once output").
enum class Durability {
  // Any crash of the master process: SQLite WAL with synchronous=NORMAL, output
  // appends in the page cache. A crash of the machine may lose the last
  // commits, with the output bytes they covered.
  kProcess,
  // A crash of the machine too: the output is fdatasync'ed before the commit
  // that records its length, SQLite runs synchronous=FULL, and the output's
  // folder is fsync'ed when the file is made or moved aside.
  kMachine,
};

// "process" or "machine"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Durability> ParseDurability(const std::string& text);

// The part of a job row that changes with its state.
struct JobStateRow {
  v1::JobState state = v1::QUEUED;
  std::string reason;
  std::string first_error;
  std::string first_error_log;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// Durable state of the master in one SQLite database (WAL). Thread-safe: a
// single connection behind a mutex; every method is one transaction.
class Store {
 public:
  // Opens or creates the database and bumps the epoch (the number of times the
  // store was opened), which makes lease ids unique across restarts.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     Durability durability = Durability::kProcess);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int64_t epoch() const { return epoch_; }

  // Inserts a QUEUED job; its id is "<name>-<seq>".
  absl::StatusOr<StoredJob> CreateJob(const v1::JobSpec& spec, const v1::SourceSnapshot& snapshot,
                                      int64_t submit_ms, const std::string& owner);
  absl::Status UpdateJobState(int64_t seq, const JobStateRow& row);
  // Records that the job made its output file (after an earlier one was
  // moved aside and an empty one created, before any row is written), and
  // which file it is ("device:inode"), so that a restart or a resume reopens
  // that file and no other.
  absl::Status SetOutputStarted(int64_t seq, const std::string& output_id);
  // A job of this store made the file whose identity is `output_id`
  // ("device:inode"): prs may move it aside for a new job's output.
  bool IsJobOutput(const std::string& output_id);
  absl::Status SetInputFingerprint(int64_t seq, const std::string& fingerprint);
  // allow_reuse: job `seq` takes the counts, output length and fingerprint of
  // job `from_seq`, which has the id `from_job_id` (or took them from it).
  absl::Status CopyResult(int64_t seq, int64_t from_seq, const std::string& from_job_id);

  // Inserts mini-batches and adds them to the job's counters. From the lister,
  // `done` marks the listing done; for the partition_keys groups, it marks the
  // groups made.
  absl::Status InsertTasks(int64_t seq, const std::vector<NewTask>& tasks, TaskSource source,
                           bool done);
  absl::StatusOr<StoredTask> GetTask(int64_t seq, int64_t task_id);
  // Succeeded partition_keys plans, by task id.
  absl::StatusOr<std::vector<StoredPlan>> KeyPlans(int64_t seq);

  // Records attempts, moves their mini-batches, inserts the mini-batches that
  // plans made and adds `deltas` to the job, in one transaction.
  absl::Status CommitAttempts(int64_t seq, const std::vector<TaskCommit>& commits,
                              const CountDeltas& deltas,
                              const std::vector<NewTask>& new_tasks = {});

  // Puts failed mini-batches back to PENDING with their tries reset, and
  // subtracts them from the failure counters (resume).
  absl::StatusOr<int64_t> ResetFailedTasks(int64_t seq);

  absl::StatusOr<std::vector<StoredJob>> LoadJobs();
  absl::StatusOr<StoredJob> LoadJob(int64_t seq);
  absl::StatusOr<v1::SourceSnapshot> GetSnapshot(int64_t seq);
  // PENDING mini-batches of a job with their tries: plans first, then by id.
  absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> PendingTasks(int64_t seq);
  absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t seq);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the columns an older database lacks.
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertTasksLocked(int64_t seq, const std::vector<NewTask>& tasks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  // Statements prepared once and kept, by their SQL: parsing and planning a
  // statement cost more than running it (docs/benchmarks.md).
  std::unordered_map<std::string, sqlite3_stmt*> statements_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_ = 0;
};

}  // namespace prs::master

#endif  // PRS_MASTER_STORE_H_

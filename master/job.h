#ifndef PRS_MASTER_JOB_H_
#define PRS_MASTER_JOB_H_

// A job as the master holds it in memory. Its durable part is the store's
// job row (master/store.h: StoredJob); this adds what lives only while the
// master runs: the queue and leases, the agents on it, the log records not
// yet written, the lister thread. Guarded by the job manager's state lock
// (master/lock_order.h), except where a field says otherwise.

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "master/lease_table.h"
#include "master/store.h"
#include "prs/v1/job.pb.h"

namespace prs::master {

struct Job : JobRecord {
  static bool IsActive(v1::JobState state) { return state == v1::QUEUED || state == v1::RUNNING; }
  bool active() const { return IsActive(state); }
  // partition_keys: one mini-batch per key combination, made after the plans.
  bool keys_mode() const { return !spec.partition_keys().empty(); }
  // Every mini-batch exists: the listing is done, every plan ended, and with
  // partition_keys the groups were made.
  bool all_created() const {
    return counts.listing_done() && plans_pending == 0 && (!keys_mode() || groups_done);
  }

  // --- As in the store: JobRecord (master/store.h) ----------------------------
  // The job's output and the committed length are the OutputCommitter's.

  // --- Derived from the spec -------------------------------------------------
  std::string log_dir;
  std::string output_file;  // empty for summary_only
  std::string output_key;   // OutputKey(output_file): one file, however spelled

  // --- Scheduling ------------------------------------------------------------
  LeaseTable leases;
  std::set<std::string> agents;  // sessions working on it now
  // Sessions that were ever assigned the job, and those that shipped the
  // last of their logs of it: the end is published when the live ones of
  // the first set are all in the second (or after logs_grace).
  std::set<std::string> served_by;
  std::set<std::string> logs_done;
  std::map<std::string, int> init_failures_by_node;
  std::set<std::string> gave_up_nodes;
  // Bumped by each resume: results leased in an earlier run are dropped.
  int64_t run = 0;
  // Resume is reopening the job (its state stays terminal until it is done).
  bool resuming = false;

  // --- The log tree (master/log_tree_writer.h) -------------------------------
  std::vector<std::string> events;       // master_role lines not yet written
  std::vector<std::string> report_rows;  // processed_mini-batches.csv rows not yet written
  struct ErrorSummary {
    int64_t count = 0;
    int64_t order = 0;  // 1 for the first distinct error seen
    std::string first;  // when, where, and the file with the traceback
  };
  std::map<std::string, ErrorSummary> errors;  // user/error.txt, by one-line error
  bool errors_changed = false;
  int64_t error_order = 0;
  std::deque<std::pair<absl::Time, int64_t>> rate_samples;
  double rate = 0;

  // Items per second, as every view shows it: over the whole run once the job
  // ended; since its start during its first minute (the windowed `rate`
  // needs ticks to fill, and a short job would show 0); then `rate`.
  double ItemsPerSecond(absl::Time now) const {
    if (start_ms <= 0) return 0;
    const double done = static_cast<double>(counts.items_succeeded() + counts.items_failed());
    const double seconds =
        static_cast<double>((active() ? absl::ToUnixMillis(now) : end_ms) - start_ms) / 1000.0;
    if (!active() || seconds < 60) return seconds > 0 ? done / seconds : 0;
    return rate;
  }
  // Bumped by each change the progress overview shows; written_version is
  // the one on disk.
  int64_t version = 0, written_version = -1;
  bool result_written = false;
  // job_result.txt is on disk; until then a terminal job is reported RUNNING,
  // so that a client that sees the end finds the files complete.
  bool result_flushed = false;
  // What the user should know that is neither an error nor progress: an
  // earlier output moved aside, inputs left out of the listing. The first
  // kMaxNotes are in JobStatus.notes; master_role.txt has them all.
  std::vector<std::string> notes;
  int64_t notes_dropped = 0;

  // --- The lister (master/lister.cc) -----------------------------------------
  std::atomic<bool> stop_listing{false};  // read without the lock
  std::thread lister;                     // started and joined by the manager
  // partition_keys: the groups' mini-batches are being made.
  bool groups_building = false;
  // allow_reuse: the earlier job this one may take its result from.
  Job* reuse_candidate = nullptr;

  // --- Watchdogs (master/thresholds.h) ---------------------------------------
  // first_task_creation_timeout counts from here (the lister's start).
  absl::Time listing_started = absl::InfinitePast();
  // progress_update_timeout counts from here: the last commit or new
  // mini-batch, or the last time no agent worked on the job.
  absl::Time last_progress = absl::InfinitePast();
};

// The append_row output file: append_row_file_name in the output folder,
// with {name} and {job_id} filled in.
std::string OutputFileOf(const v1::JobSpec& spec, const std::string& job_id);

// The identity of an output file: its folder's device and inode, and its
// name; the path itself when the folder does not exist. Two spellings of one
// file (a link, "out/.", a bind mount) have one key.
std::string OutputKey(const std::string& output_file);

}  // namespace prs::master

#endif  // PRS_MASTER_JOB_H_

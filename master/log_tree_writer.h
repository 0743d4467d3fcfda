#ifndef PRS_MASTER_LOG_TREE_WRITER_H_
#define PRS_MASTER_LOG_TREE_WRITER_H_

// The master's part of a job's log tree (docs/log-tree.md): readme.txt,
// job_progress_overview.txt, job_result.txt, sys/master_role.txt,
// sys/job_report/processed_mini-batches.csv and user/error.txt.
//
// The job manager collects what changed under its state lock (Collect),
// writes it with no lock but its flush mutex (Write), and puts back what could
// not be written (Restore), so that a full disk delays the log tree and never
// cuts holes in it.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "master/job.h"
#include "master/task.h"

namespace prs::master {

// What the log tree's readme.txt says, written at submit.
extern const char kLogTreeReadme[];

// "2026-11-30 19:55:20.123", UTC.
std::string LogTimestamp(absl::Time t);

// A line of sys/master_role.txt: "time|LEVEL|pid|master|message".
std::string MasterRoleLine(absl::Time now, const std::string& level, const std::string& message);

// One row of processed_mini-batches.csv.
std::string ReportRow(const AttemptRecord& attempt, int64_t item_count);

// The distinct errors a job keeps for user/error.txt; the rest are counted
// under kOtherErrors (docs/limits.md).
inline constexpr size_t kMaxDistinctErrors = 1000;
inline constexpr char kOtherErrors[] =
    "(other errors, after the first 1000 distinct ones; their tracebacks are in user/error/)";

// Counts a failed attempt's error for user/error.txt (`now`: when it reached
// the master, the order job_result.txt uses).
void NoteError(Job& job, const AttemptRecord& attempt, absl::Time now);

// One job's records on their way to disk.
struct LogTreeUpdate {
  Job* job = nullptr;
  std::string log_dir;
  std::vector<std::string> events;
  std::vector<std::string> report_rows;
  std::string error_summary;  // user/error.txt, when it changed
  std::string overview;
  std::string result;     // job_result.txt, once the job ended
  bool finished = false;  // `result` is the job's final result
  // What could not be written, to be written again at the next flush.
  bool events_failed = false, rows_failed = false, errors_failed = false, result_failed = false;
};

// True when the job has something to write (an active job always has: its
// overview's time and rate move).
bool NeedsFlush(const Job& job);
// Takes the job's unwritten records and renders its files as they are now.
// Under the job manager's state lock.
LogTreeUpdate Collect(Job& job, absl::Time now);
// Writes them; marks what failed. No lock needed.
void Write(LogTreeUpdate& update);
// Puts back in front of newer records what could not be written. Under the
// job manager's state lock.
void Restore(LogTreeUpdate& update);

}  // namespace prs::master

#endif  // PRS_MASTER_LOG_TREE_WRITER_H_

#ifndef PRS_MASTER_OUTPUT_COMMITTER_H_
#define PRS_MASTER_OUTPUT_COMMITTER_H_

// Exactly-once output: the rows of accepted results are appended to the job's
// output file and then the attempts, the mini-batches' new states and the
// file's committed length are written in one SQLite transaction. A commit that
// fails is cut back out of the file. Owns the jobs' output files.
//
// Thread-safe: one mutex serializes appends with their store commits, so rows
// and the mini-batches' states reach disk in one order (master/lock_order.h).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "master/attempt_outcome.h"
#include "master/output_file.h"
#include "master/store.h"

namespace prs::master {

class OutputCommitter {
 public:
  // Output files are never written inside `state_dir`. With
  // Durability::kMachine the rows are fdatasync'ed before the commit that
  // records them, and a new file's folder is fsync'ed.
  OutputCommitter(Store* store, Clock* clock, std::string state_dir,
                  Durability durability = Durability::kProcess)
      : store_(store), clock_(clock), state_dir_(std::move(state_dir)), durability_(durability) {}
  OutputCommitter(const OutputCommitter&) = delete;
  OutputCommitter& operator=(const OutputCommitter&) = delete;

  // Job `seq` appends its rows to `path`; the file is made at the first rows
  // (so a job that never starts leaves an earlier output where it is).
  void AddJob(int64_t seq, const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);

  // The job's output as the store has it, after a restart or for a resume:
  // the file it made, reopened and cut to its committed `length` (rows whose
  // commit did not happen are dropped). A file never made, or made with
  // nothing committed and gone, is made at the first rows again. The error
  // names the loss when committed rows are gone: the file is never padded.
  absl::Status Reopen(int64_t seq, const std::string& path, const StoredJob& stored)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A resume starts a new run of the job: results leased in an earlier run are
  // dropped from now on. Closes the file until Reopen. Returns the run.
  int64_t NewRun(int64_t seq) ABSL_LOCKS_EXCLUDED(mu_);

  // The job's run `run` ended: nothing more is appended (unless a resume
  // started a newer run, which owns the file now).
  void Close(int64_t seq, int64_t run) ABSL_LOCKS_EXCLUDED(mu_);

  struct Result {
    // None of the outcomes is of the job's current run: nothing was done.
    bool stale = false;
    // OK when the rows and the commit reached disk; else nothing did (or
    // `error` says why the job must stop).
    absl::Status status;
    std::string note;   // an earlier output was moved aside
    std::string error;  // the output was lost or cannot be cut back: stop the job
    bool appended = false;
    // The outcomes of the current run, and what they added.
    std::vector<const Outcome*> committed;
    CommitBatch batch;
  };
  // Commits `outcomes` of job `seq`, whose output wants `header`
  // (append_row_format.header) at its start.
  Result Commit(int64_t seq, const std::string& job_id, bool header,
                std::vector<const Outcome*> outcomes) ABSL_LOCKS_EXCLUDED(mu_);

  // The outputs this master's jobs made, by identity: a new job may move
  // those aside, and no other file (OutputFile).
  KnownOutput KnownOutputs() const;

 private:
  // A job's output as the commits see it.
  struct Output {
    std::unique_ptr<OutputFile> file;  // null for summary_only
    int64_t length = 0;                // committed bytes
    int64_t run = 0;                   // commits of an earlier run are dropped
    bool started = false;              // the job made its file
  };
  // Appends the rows at the committed length, making the file first when the
  // job has none yet. Fills `r.status`, `r.note`, `r.error`, `r.appended`.
  void AppendLocked(Output& out, const std::string& job_id, int64_t seq, const std::string& rows,
                    Result& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<OutputFile> MakeFile(const std::string& path) const;

  Store* const store_;
  Clock* const clock_;
  const std::string state_dir_;
  const Durability durability_;
  absl::Mutex mu_;
  std::map<int64_t, Output> outputs_ ABSL_GUARDED_BY(mu_);  // by job seq
};

}  // namespace prs::master

#endif  // PRS_MASTER_OUTPUT_COMMITTER_H_

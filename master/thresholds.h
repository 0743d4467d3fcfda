#ifndef PRS_MASTER_THRESHOLDS_H_
#define PRS_MASTER_THRESHOLDS_H_

// When a job ends on its own: the failure thresholds, the end of the work and
// the watchdogs, as pure verdicts on the job's counts and times.

#include <optional>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "prs/v1/job.pb.h"

namespace prs::master {

struct Verdict {
  v1::JobState state = v1::SUCCEEDED;
  std::string reason;  // empty for SUCCEEDED
};

// Where a job's work stands, besides its counters.
struct WorkState {
  // Every mini-batch exists: the listing is done, every plan ended, and with
  // partition_keys the groups were made.
  bool all_created = false;
  // Nothing queued and nothing leased.
  bool idle = false;
  // The job's first error (appended to a failure's reason), or empty.
  std::string first_error;
};

// error_threshold, allowed_failed_count, allowed_failed_percent (once every
// mini-batch exists), then the end: SUCCEEDED when every mini-batch was
// processed, FAILED when no input succeeded. nullopt while the job goes on.
std::optional<Verdict> JudgeCounts(const v1::JobSpec& spec, const v1::JobCounts& counts,
                                   const WorkState& work);

// Where a job's watchdogs stand.
struct WatchState {
  absl::Time now;
  absl::Time listing_started;         // first_task_creation_timeout counts from here
  absl::Time last_progress;           // progress_update_timeout counts from here
  bool running = false;               // RUNNING (not QUEUED)
  int64_t leased = 0;                 // mini-batches leased now
  std::set<std::string> lease_nodes;  // the nodes that hold them
};

// first_task_creation_timeout: no mini-batch made in time; then
// progress_update_timeout: nothing finished, failed or was made in time while
// agents held leases. The FAILED reason, or nullopt. The caller restarts the
// progress clock while no agent works on the job.
std::optional<std::string> JudgeWatchdogs(const v1::JobSpec& spec, const v1::JobCounts& counts,
                                          const WatchState& watch);

}  // namespace prs::master

#endif  // PRS_MASTER_THRESHOLDS_H_

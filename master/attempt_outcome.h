#ifndef PRS_MASTER_ATTEMPT_OUTCOME_H_
#define PRS_MASTER_ATTEMPT_OUTCOME_H_

// What one finished (or lost) attempt means for its mini-batch: succeeded,
// tried again, or failed for good (run_max_try), and what it adds to the
// job's counters and output. Pure functions: no locks, no I/O.

#include <cstdint>
#include <string>
#include <vector>

#include "common/message_limits.h"
#include "master/lease_table.h"
#include "master/task.h"
#include "prs/v1/agent_service.pb.h"
#include "prs/v1/job.pb.h"

namespace prs::master {

// An accepted result (or a lost lease) on its way to disk.
struct Outcome {
  TaskCommit commit;
  int64_t item_count = 0;
  std::string rows;
  int64_t row_count = 0;
  bool counts_try = true;    // false: the mini-batch never ran (init failed, released)
  bool load_failed = false;  // the entry script cannot be loaded: fail the job
  bool init_failed = false;
  int64_t run = 0;
  bool plan_ended = false;         // a plan task ended (succeeded or failed)
  std::vector<NewTask> new_tasks;  // made by a plan
  int64_t items_total_delta = 0;   // items that became known
  std::string header;              // append_row_format.header line
};

// What one result may carry is bounded in common/message_limits.h
// (kMaxResultRowsBytes, kMaxHeaderBytes, kMaxErrorChars, kMaxErrorDetailBytes).
// A result over them is a failed try of its mini-batch, with an error naming
// the limit; nothing of it reaches the output.

// What the job knows that an outcome depends on.
struct OutcomeContext {
  const v1::JobSpec* spec = nullptr;
  // partition_keys: the groups were made already (a plan run again after a
  // resume makes its own groups).
  bool groups_done = false;
  // Ids for the mini-batches a plan makes; bumped for each.
  int64_t* next_task_id = nullptr;
};

// The outcome of `result` for the mini-batch `task_id` leased as `lease` to
// agent `agent_id` on node `node_id`. A failed try fails the mini-batch when
// it was the run_max_try-th, or with `last_try` (retrying cannot help); an
// attempt that never ran (INIT_FAILED, LOAD_FAILED, RELEASED) does not count.
Outcome DecideOutcome(const OutcomeContext& context, int64_t task_id, const Lease& lease,
                      const std::string& agent_id, const std::string& node_id,
                      v1::TaskResult result, bool last_try = false);

// Outcomes of one job committed together: the counters they add, the rows to
// append, the state of each mini-batch, and the mini-batches plans made.
struct CommitBatch {
  CountDeltas deltas;
  std::string rows;
  std::vector<TaskCommit> commits;
  std::vector<NewTask> new_tasks;
};

// With `header_first` (append_row_format.header and an empty output file) the
// first header the outcomes carry starts the rows.
CommitBatch SumOutcomes(const std::vector<const Outcome*>& outcomes, bool header_first);

}  // namespace prs::master

#endif  // PRS_MASTER_ATTEMPT_OUTCOME_H_

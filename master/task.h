#ifndef PRS_MASTER_TASK_H_
#define PRS_MASTER_TASK_H_

// The master's mini-batch types: what the partitioner and the plans make, what
// the store keeps, and what a finished attempt commits.

#include <cstdint>
#include <string>
#include <vector>

#include "prs/v1/agent_service.pb.h"

namespace prs::master {

// State of a mini-batch in the store. A lease is not stored: after a restart
// every in-flight mini-batch is PENDING again.
enum class TaskState : int { kPending = 0, kSucceeded = 2, kFailed = 3 };

// What a task does. A plan task is not user work: a worker reads one tabular
// file and answers with the mini-batches to make of it (docs/tabular.md).
enum class TaskKind : int { kRun = 0, kPlan = 1 };

// A mini-batch created by the partitioner or from a plan.
struct NewTask {
  int64_t task_id = 0;
  std::vector<std::string> items;
  // Items (files or records) in the mini-batch; -1 until a worker counted
  // them (a tabular file that was not planned).
  int64_t item_count = -1;
  TaskKind kind = TaskKind::kRun;
};

// A stored mini-batch as PullTasks needs it.
struct StoredTask {
  std::vector<std::string> items;
  int64_t item_count = -1;
  TaskKind kind = TaskKind::kRun;
};

// One finished attempt as recorded in the attempts table.
struct AttemptRecord {
  int64_t task_id = 0;
  int32_t attempt = 0;
  std::string agent_id;
  std::string node_id;
  v1::TaskResult result;  // status, timings, counts, error; rows are not stored
};

// The outcome of one attempt for its mini-batch, committed with the output.
struct TaskCommit {
  AttemptRecord attempt;
  TaskState new_state = TaskState::kPending;
  int32_t tries = 0;        // tries used so far, including this one when it counts
  int64_t item_count = -1;  // the mini-batch's items as now known (-1: unknown)
  std::string plan;         // a partition_keys plan's answer, kept for the groups
};

// A succeeded partition_keys plan task.
struct StoredPlan {
  int64_t task_id = 0;
  std::string descriptor;  // the plan task's item
  std::string plan;        // the worker's answer
};

// Who makes the tasks of an InsertTasks call.
enum class TaskSource { kLister, kGroups };

// Deltas of a job's counters applied in the same transaction as a commit.
struct CountDeltas {
  int64_t processed = 0;
  int64_t failed = 0;
  int64_t items_succeeded = 0;
  int64_t items_failed = 0;
  int64_t rows_written = 0;
  int64_t retries = 0;
  int64_t output_bytes = 0;
  int64_t items_total = 0;  // items that became known (tabular)
};

}  // namespace prs::master

#endif  // PRS_MASTER_TASK_H_

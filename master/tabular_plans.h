#ifndef PRS_MASTER_TABULAR_PLANS_H_
#define PRS_MASTER_TABULAR_PLANS_H_

// A worker's answer to a plan task becomes mini-batches (docs/tabular.md).
// Pure functions: no locks, no I/O.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "master/task.h"

namespace prs::master {

// The mini-batches of a bytes or rows plan. The answer has a line
// "start\tend\trecords" per mini-batch, and a last line "next\tOFFSET" when
// the worker planned one chunk of the file: that becomes a plan of the rest,
// first in the list. Ids are taken from `next_id`. INTERNAL naming the line
// for an answer that is not well formed.
absl::StatusOr<std::vector<NewTask>> RangeTasks(absl::string_view plan_descriptor,
                                                absl::string_view answer, int64_t& next_id);

// The files holding one partition_keys combination, and its records.
struct KeyGroup {
  std::vector<std::string> items;
  int64_t records = 0;
};

// Adds a partition_keys plan's answer (a line "records\tvalues_json" per key
// combination in the file) to `groups`, keyed by values_json.
absl::Status AddKeyPlan(absl::string_view plan_descriptor, absl::string_view answer,
                        std::map<std::string, KeyGroup>& groups);

// One mini-batch per group, in key order. Ids are taken from `next_id`.
std::vector<NewTask> GroupTasks(std::map<std::string, KeyGroup>& groups, int64_t& next_id);

}  // namespace prs::master

#endif  // PRS_MASTER_TABULAR_PLANS_H_

#include "master/tabular_plans.h"

#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/tabular_descriptor.h"

namespace prs::master {
namespace {

template <typename T>
absl::StatusOr<T> DecodeAs(absl::string_view descriptor) {
  auto decoded = DecodeDescriptor(descriptor);
  if (!decoded.ok()) return absl::InternalError(decoded.status().message());
  if (!std::holds_alternative<T>(*decoded)) {
    return absl::InternalError(absl::StrCat("task descriptor '", descriptor, "' is not a plan"));
  }
  return std::get<T>(*std::move(decoded));
}

}  // namespace

absl::StatusOr<std::vector<NewTask>> RangeTasks(absl::string_view plan_descriptor,
                                                absl::string_view answer, int64_t& next_id) {
  auto plan = DecodeAs<PlanDescriptor>(plan_descriptor);
  if (!plan.ok()) return plan.status();
  // Records before the next range; unknown (-1) in the rest of a file planned
  // by an older master.
  int64_t record = plan->begin.record;
  const auto malformed = [&](absl::string_view line) {
    return absl::InternalError(
        absl::StrCat("the worker's plan of ", plan->path, " has a malformed line '", line, "'"));
  };
  std::vector<NewTask> tasks;
  int64_t last_end = 0;
  bool continued = false;
  for (absl::string_view line : absl::StrSplit(answer, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> v = absl::StrSplit(line, '\t');
    if (continued) return malformed(line);  // "next" comes last
    if (v.size() == 2 && v[0] == "next") {
      int64_t offset = 0;
      if (!absl::SimpleAtoi(v[1], &offset) || offset <= 0 || offset != last_end) {
        return malformed(line);
      }
      PlanDescriptor rest = *plan;
      rest.begin = {offset, record};
      NewTask t;
      t.kind = TaskKind::kPlan;
      t.item_count = 0;
      t.items.push_back(EncodeDescriptor(rest));
      tasks.push_back(std::move(t));
      continued = true;
      continue;
    }
    int64_t start = 0, end = 0, records = 0;
    if (v.size() != 3 || !absl::SimpleAtoi(v[0], &start) || !absl::SimpleAtoi(v[1], &end) ||
        !absl::SimpleAtoi(v[2], &records) || start < last_end || end <= start || records < 0) {
      return malformed(line);
    }
    last_end = end;
    // A range carries the numbers of its records, for the reports of a person.
    RangeDescriptor range{plan->format,
                          plan->stamp,
                          {start, record},
                          {end, record < 0 ? -1 : record + records},
                          plan->path};
    if (record >= 0) record += records;
    NewTask t;
    t.items.push_back(EncodeDescriptor(range));
    t.item_count = records;
    tasks.push_back(std::move(t));
  }
  for (auto& t : tasks) t.task_id = next_id++;
  return tasks;
}

absl::Status AddKeyPlan(absl::string_view plan_descriptor, absl::string_view answer,
                        std::map<std::string, KeyGroup>& groups) {
  auto plan = DecodeAs<PlanDescriptor>(plan_descriptor);
  if (!plan.ok()) return plan.status();
  for (absl::string_view line : absl::StrSplit(answer, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> v =
        absl::StrSplit(line, absl::MaxSplits('\t', 1));
    int64_t records = 0;
    if (!absl::SimpleAtoi(v.first, &records) || records < 0 || v.second.empty()) {
      return absl::InternalError(absl::StrCat("the worker's key plan of ", plan->path,
                                              " has a malformed line '", line, "'"));
    }
    KeyGroup& g = groups[std::string(v.second)];
    g.items.push_back(EncodeDescriptor(GroupDescriptor{plan->format, plan->stamp, plan->keys_json,
                                                       std::string(v.second), plan->path}));
    g.records += records;
  }
  return absl::OkStatus();
}

std::vector<NewTask> GroupTasks(std::map<std::string, KeyGroup>& groups, int64_t& next_id) {
  std::vector<NewTask> tasks;
  tasks.reserve(groups.size());
  for (auto& [values, g] : groups) {
    NewTask t;
    t.task_id = next_id++;
    t.items = std::move(g.items);
    t.item_count = g.records;
    tasks.push_back(std::move(t));
  }
  return tasks;
}

}  // namespace prs::master

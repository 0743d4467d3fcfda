#include "master/attempt_outcome.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/job_config.h"
#include "common/text.h"
#include "master/tabular_plans.h"

namespace prs::master {
namespace {

// A plan's answer becomes mini-batches; it is never output. A malformed
// answer fails the plan like an exception in its worker.
void MakePlanTasks(const OutcomeContext& context, const Lease& lease, v1::TaskResult& result,
                   Outcome& o) {
  absl::Status made;
  if (!context.spec->partition_keys().empty()) {
    o.commit.plan = result.rows();
    if (context.groups_done) {
      // Run again after the groups were made (resume): its own groups.
      std::map<std::string, KeyGroup> groups;
      made = AddKeyPlan(lease.plan_descriptor, o.commit.plan, groups);
      if (made.ok()) o.new_tasks = GroupTasks(groups, *context.next_task_id);
    }
  } else {
    auto tasks = RangeTasks(lease.plan_descriptor, result.rows(), *context.next_task_id);
    made = tasks.status();
    if (tasks.ok()) o.new_tasks = *std::move(tasks);
  }
  if (!made.ok()) {
    result.set_status(v1::RUN_EXCEPTION);
    result.set_error(std::string(made.message()));
    o.commit.plan.clear();
    o.new_tasks.clear();
  }
  for (const auto& t : o.new_tasks) o.items_total_delta += t.item_count;
  result.clear_rows();
  result.set_row_count(0);
}

// Where the try leaves the mini-batch: succeeded, pending again, or failed.
void DecideState(const OutcomeContext& context, const Lease& lease, int64_t count, bool last_try,
                 v1::TaskResult& result, Outcome& o) {
  const auto status = result.status();
  if (status == v1::RUN_DONE) {
    o.rows = std::move(*result.mutable_rows());
    o.row_count = result.row_count();
    o.header = std::move(*result.mutable_header());
    if (context.spec->output_action() != "append_row") {
      o.rows.clear();
      o.row_count = 0;
    }
    result.set_items_succeeded(std::clamp<int64_t>(result.items_succeeded(), 0, count));
    o.commit.new_state = TaskState::kSucceeded;
    o.commit.tries = lease.attempt;
  } else if (status == v1::INIT_FAILED || status == v1::LOAD_FAILED || status == v1::RELEASED) {
    o.counts_try = false;
    o.load_failed = status == v1::LOAD_FAILED;
    o.init_failed = status == v1::INIT_FAILED;
    o.commit.new_state = TaskState::kPending;
    o.commit.tries = lease.attempt - 1;
    result.set_items_succeeded(0);
  } else {
    result.set_items_succeeded(0);
    o.commit.tries = lease.attempt;
    o.commit.new_state = last_try || lease.attempt >= context.spec->run_max_try()
                             ? TaskState::kFailed
                             : TaskState::kPending;
  }
}

// Why a result that says RUN_DONE cannot be written as it is, or "": rows
// must be whole lines, no more than one per item, within the size limit.
std::string MalformedRows(const v1::TaskResult& r, int64_t count) {
  const std::string& rows = r.rows();
  if (static_cast<int64_t>(rows.size()) > kMaxResultRowsBytes) {
    return absl::StrCat("the result's rows are ", rows.size(), " bytes, over the limit of ",
                        kMaxResultRowsBytes >> 20,
                        " MiB per mini-batch (docs/limits.md); use a smaller mini_batch_size");
  }
  if (static_cast<int64_t>(r.header().size()) > kMaxHeaderBytes ||
      (!r.header().empty() && r.header().back() != '\n')) {
    return "the result's header is not one line of at most 1 MiB";
  }
  if (r.row_count() < 0 || (rows.empty() != (r.row_count() == 0))) {
    return absl::StrCat("the result says ", r.row_count(), " rows but carries ", rows.size(),
                        " bytes of them");
  }
  if (!rows.empty() && rows.back() != '\n') {
    return "the result's rows do not end with a line break: a row would run into the next";
  }
  if (count >= 0 && r.row_count() > count) {
    return absl::StrCat("run() returned ", r.row_count(), " rows for ", count,
                        " items; at most one row per item (docs/limits.md)");
  }
  return "";
}

}  // namespace

Outcome DecideOutcome(const OutcomeContext& context, int64_t task_id, const Lease& lease,
                      const std::string& agent_id, const std::string& node_id,
                      v1::TaskResult result, bool last_try) {
  Outcome o;
  o.run = lease.run;
  // The one-line error goes into summaries people read (user/error.txt, the
  // report CSV, master_role.txt, the reason): no control bytes from a
  // script's message (colours, bells) there. The traceback file keeps it all.
  result.set_error(Printable(result.error(), kMaxErrorChars));
  // The full traceback is in the node's user/error file; the attempt keeps a bounded copy.
  if (static_cast<int64_t>(result.error_detail().size()) > kMaxErrorDetailBytes) {
    result.set_error_detail(BoundedUtf8(result.error_detail(), kMaxErrorDetailBytes));
  }
  o.commit.attempt.task_id = task_id;
  o.commit.attempt.attempt = lease.attempt;
  o.commit.attempt.agent_id = agent_id;
  o.commit.attempt.node_id = node_id;
  const bool plan = lease.kind == TaskKind::kPlan;
  // Items: files, or records. A tabular mini-batch's records are known from
  // its plan, and exactly from the worker that parsed them (the plan counts a
  // line of blanks that the parser skips), whose count wins.
  int64_t count = lease.item_count;
  if (plan) {
    count = 0;
  } else if (IsTabular(*context.spec) && result.items_total() >= 0 &&
             result.items_total() != count &&
             (result.status() == v1::RUN_DONE || result.status() == v1::RUN_EXCEPTION)) {
    o.items_total_delta = result.items_total() - std::max<int64_t>(count, 0);
    count = result.items_total();
  }
  if (plan && result.status() == v1::RUN_DONE) MakePlanTasks(context, lease, result, o);
  if (!plan && result.status() == v1::RUN_DONE) {
    if (std::string why = MalformedRows(result, count); !why.empty()) {
      result.set_status(v1::RUN_EXCEPTION);
      result.set_error(why);
      result.set_items_succeeded(0);
    }
  }
  result.set_items_total(count);
  DecideState(context, lease, count, last_try, result, o);
  // Stored: the records as known, -1 while unknown.
  o.commit.item_count = plan ? 0 : count;
  if (o.commit.new_state == TaskState::kFailed && (plan || count < 0)) {
    // A file that could not be planned or read: its records are unknown, so
    // it counts as one failed item (error_threshold 0 still fails the job);
    // the store keeps -1, which a resume takes back out of the counters.
    o.commit.item_count = -1;
    count = 1;
    o.items_total_delta += 1;
    result.set_items_total(count);
  }
  o.item_count = count;
  o.plan_ended = plan && o.commit.new_state != TaskState::kPending;
  result.clear_rows();
  result.clear_header();
  o.commit.attempt.result = std::move(result);
  return o;
}

CommitBatch SumOutcomes(const std::vector<const Outcome*>& outcomes, bool header_first) {
  CommitBatch b;
  CountDeltas& d = b.deltas;
  for (const Outcome* o : outcomes) {
    const auto& r = o->commit.attempt.result;
    if (o->commit.new_state == TaskState::kSucceeded) {
      ++d.processed;
      d.items_succeeded += r.items_succeeded();
      d.items_failed += o->item_count - r.items_succeeded();
      d.rows_written += o->row_count;
      b.rows += o->rows;
    } else if (o->commit.new_state == TaskState::kFailed) {
      ++d.processed;
      ++d.failed;
      d.items_failed += o->item_count;
    } else if (o->counts_try) {
      ++d.retries;
    }
    d.items_total += o->items_total_delta;
    for (const auto& t : o->new_tasks) d.items_total -= t.item_count;  // counted on insert
    b.new_tasks.insert(b.new_tasks.end(), o->new_tasks.begin(), o->new_tasks.end());
    b.commits.push_back(o->commit);
  }
  // append_row_format.header: the column names start the output file.
  if (!b.rows.empty() && header_first) {
    for (const Outcome* o : outcomes) {
      if (o->header.empty() || o->rows.empty()) continue;
      b.rows.insert(0, o->header);
      break;
    }
  }
  d.output_bytes = static_cast<int64_t>(b.rows.size());
  return b;
}

}  // namespace prs::master

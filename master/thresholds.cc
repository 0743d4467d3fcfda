#include "master/thresholds.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prs::master {
namespace {

Verdict Failed(std::string why, const WorkState& work) {
  if (!work.first_error.empty()) absl::StrAppend(&why, "; first error: ", work.first_error);
  return Verdict{v1::FAILED, std::move(why)};
}

}  // namespace

std::optional<Verdict> JudgeCounts(const v1::JobSpec& spec, const v1::JobCounts& c,
                                   const WorkState& work) {
  if (spec.error_threshold() >= 0 && c.items_failed() > spec.error_threshold()) {
    return Failed(absl::StrCat("error_threshold exceeded: ", c.items_failed(),
                               " failed items > error_threshold ", spec.error_threshold()),
                  work);
  }
  if (spec.allowed_failed_count() >= 0 && c.mini_batches_failed() > spec.allowed_failed_count()) {
    return Failed(
        absl::StrCat("allowed_failed_count exceeded: ", c.mini_batches_failed(),
                     " failed mini-batches > allowed_failed_count ", spec.allowed_failed_count()),
        work);
  }
  // Tabular plans make more mini-batches: the percentage waits for all of them.
  if (work.all_created && spec.allowed_failed_percent() < 100 && c.mini_batches_created() > 0 &&
      c.mini_batches_failed() * 100 > spec.allowed_failed_percent() * c.mini_batches_created()) {
    return Failed(absl::StrCat("allowed_failed_percent exceeded: ", c.mini_batches_failed(), " of ",
                               c.mini_batches_created(), " mini-batches failed > ",
                               spec.allowed_failed_percent(), "%"),
                  work);
  }
  if (!work.all_created || !work.idle || c.mini_batches_processed() < c.mini_batches_created()) {
    return std::nullopt;
  }
  // As ParallelRunStep ("no succeeded mini batch item"): a job in which no
  // input succeeded did nothing, whatever the thresholds tolerate.
  if (c.items_succeeded() == 0 && c.items_failed() > 0) {
    return Failed(absl::StrCat("no input succeeded: all ", c.items_failed(), " items failed, in ",
                               c.mini_batches_processed(), " mini-batches"),
                  work);
  }
  return Verdict{v1::SUCCEEDED, ""};
}

std::optional<std::string> JudgeWatchdogs(const v1::JobSpec& spec, const v1::JobCounts& counts,
                                          const WatchState& watch) {
  if (spec.first_task_creation_timeout() > 0 && counts.mini_batches_created() == 0 &&
      !counts.listing_done() &&
      watch.now - watch.listing_started > absl::Seconds(spec.first_task_creation_timeout())) {
    return absl::StrCat("no mini-batch was made within ", spec.first_task_creation_timeout(),
                        " s (first_task_creation_timeout): listing the inputs is stuck or too "
                        "slow; check that the master can read them (a hung network filesystem?)");
  }
  if (spec.progress_update_timeout() <= 0 || !watch.running) return std::nullopt;
  if (watch.now - watch.last_progress <= absl::Seconds(spec.progress_update_timeout())) {
    return std::nullopt;
  }
  return absl::StrCat(
      "no progress for ", spec.progress_update_timeout(),
      " s (progress_update_timeout): no mini-batch finished, failed or was made, while ",
      watch.leased, " were leased to ",
      watch.lease_nodes.empty() ? std::string("no node") : absl::StrJoin(watch.lease_nodes, ", "),
      "; see those nodes' sys/node/<node>/agent.txt and user/stderr files");
}

}  // namespace prs::master

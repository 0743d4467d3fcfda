#ifndef PRS_CLI_TOP_FRAME_H_
#define PRS_CLI_TOP_FRAME_H_

// One screen of `prs top`: the jobs (state, owner, progress, rate, ETA,
// agents) and the nodes (GPUs, job, leases, busy workers). Header-only, so
// that the unit tests use it without linking the CLI.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/job_state.h"
#include "common/text.h"
#include "prs/v1/job_service.pb.h"

namespace prs::cli {

// "[#######.............]  35%" for `done` of `total`.
inline std::string ProgressBar(int64_t done, int64_t total, int width = 20) {
  const double f = total > 0 ? std::clamp(static_cast<double>(done) / total, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(f * width);
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "] ",
                      absl::StrFormat("%3d%%", static_cast<int>(f * 100)));
}

// `jobs` as ListJobs returns them (newest first): the active ones first,
// then at most `ended` ended ones.
inline std::string TopFrame(const std::string& master, const std::vector<v1::JobStatus>& jobs,
                            const v1::ListAgentsResponse& agents, absl::Time now,
                            size_t ended = 5) {
  std::string out =
      absl::StrCat("prs top  ", master, "  ",
                   absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", now, absl::UTCTimeZone()), "\n\n");
  std::vector<const v1::JobStatus*> shown;
  for (const auto& j : jobs) {
    if (!IsTerminal(j.state())) shown.push_back(&j);
  }
  const size_t active = shown.size();
  for (const auto& j : jobs) {
    if (IsTerminal(j.state()) && shown.size() - active < ended) shown.push_back(&j);
  }
  absl::StrAppendFormat(&out, "JOBS %d running or queued\n", active);
  absl::StrAppendFormat(&out, "%-28s %-10s %-10s %-27s %19s %7s %10s %9s %6s\n", "JOB", "STATE",
                        "OWNER", "PROGRESS", "ITEMS", "FAILED", "ITEMS/S", "ETA", "AGENTS");
  for (const v1::JobStatus* j : shown) {
    const auto& c = j->counts();
    const int64_t done = c.items_succeeded() + c.items_failed();
    const double rate = j->items_per_second();
    std::string eta = "-";
    if (IsTerminal(j->state())) {
      eta = "ended";
    } else if (rate > 0 && c.listing_done() && c.items_total() > done) {
      eta = FormatDuration(static_cast<double>(c.items_total() - done) / rate);
    }
    absl::StrAppendFormat(
        &out, "%-28s %-10s %-10s %-27s %19s %7d %10.1f %9s %6d\n", Printable(j->job_id(), 28),
        JobStateName(j->state()), Printable(j->owner(), 10), ProgressBar(done, c.items_total()),
        absl::StrCat(done, "/", c.items_total()), c.items_failed(), rate, eta, j->active_agents());
  }
  absl::StrAppendFormat(&out, "\nNODES %d\n", agents.agents_size());
  absl::StrAppendFormat(&out, "%-20s %-16s %-12s %-28s %7s %6s %8s\n", "NODE", "IP", "GPUS", "JOB",
                        "LEASES", "BUSY", "SEEN");
  for (const auto& a : agents.agents()) {
    absl::StrAppendFormat(&out, "%-20s %-16s %-12s %-28s %7d %6d %7.1fs\n",
                          Printable(a.node_id(), 20), Printable(a.ip(), 16),
                          a.gpus().empty() ? "-" : absl::StrJoin(a.gpus(), ","),
                          a.job_id().empty() ? "-" : Printable(a.job_id(), 28), a.leases(),
                          a.busy_workers(), a.last_seen_ms_ago() / 1000.0);
  }
  return out;
}

}  // namespace prs::cli

#endif  // PRS_CLI_TOP_FRAME_H_

// `prs top`: the cluster in the terminal, for people who live in ssh.
#include <unistd.h>

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/top_frame.h"

namespace prs::cli {

int TopCommand(JobClient& client, const std::string& master, double interval_s, int iterations) {
  if (!(interval_s >= 0.2 && interval_s <= 3600)) {  // NaN too
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--interval ", interval_s,
                     ": give seconds from 0.2 (a master is not polled harder) to "
                     "3600")));
  }
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  for (int i = 0; iterations <= 0 || i < iterations; ++i) {
    if (i > 0) absl::SleepFor(absl::Seconds(interval_s));  // the refresh period
    auto jobs = client.List(100);
    if (!jobs.ok()) return Fail(jobs.status());
    auto agents = client.ListAgents();
    if (!agents.ok()) return Fail(agents.status());
    const std::string frame = TopFrame(master, *jobs, *agents, absl::Now());
    // A terminal is redrawn in place; a pipe gets one frame after another.
    std::fputs(tty ? "\033[H\033[2J" : (i > 0 ? "\n" : ""), stdout);
    std::fputs(frame.c_str(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace prs::cli

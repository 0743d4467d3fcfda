// The subcommands that act on jobs of a running prs-master: submit, status,
// watch, list, cancel, nodes and resume; and what every subcommand shares.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/job_state.h"
#include "common/json.h"
#include "common/text.h"

namespace prs::cli {

int Fail(const absl::Status& s) {
  // A message may quote what a file held: never send raw control bytes to
  // the terminal.
  std::fprintf(stderr, "prs: error: %s\n", PrintableText(s.message()).c_str());
  return s.code() == absl::StatusCode::kUnavailable ? 3 : kExitUsage;
}

namespace {

int ExitFor(const v1::JobStatus& st) { return st.state() == v1::SUCCEEDED ? 0 : kExitJobFailed; }

}  // namespace

int Follow(JobClient& client, const std::string& job_id, v1::JobStatus* final_out) {
  ProgressPrinter progress(::isatty(2) != 0);
  auto final_status = client.Watch(job_id, [&](const auto& st) { progress.Update(st); });
  progress.Done();
  if (!final_status.ok()) return Fail(final_status.status());
  std::fputs(StatusText(*final_status).c_str(), stderr);
  if (final_out != nullptr) *final_out = *final_status;
  return ExitFor(*final_status);
}

std::string& PrsCommand() {
  static std::string* const command = new std::string("prs");
  return *command;
}

int SubmitCommand(JobClient& client, const std::string& master, const std::string& job_file,
                  const std::vector<std::string>& overrides, bool wait) {
  auto request = PrepareSubmit(job_file, overrides);
  if (!request.ok()) return Fail(request.status());
  auto resp = client.Submit(*request);
  if (!resp.ok()) return Fail(resp.status());
  std::printf("%s\n", resp->job_id().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "prs: job %s queued on %s; logs in %s\n", resp->job_id().c_str(),
               master.c_str(), resp->log_dir().c_str());
  for (const auto& w : resp->warnings()) std::fprintf(stderr, "prs: note: %s\n", w.c_str());
  return wait ? Follow(client, resp->job_id()) : 0;
}

int PrepareCommand(const std::string& job_file, const std::vector<std::string>& overrides) {
  if (::isatty(1) != 0) {
    return Fail(absl::InvalidArgumentError(
        "prs prepare writes the request as binary protobuf: redirect stdout to a file, e.g. "
        "`prs prepare job.yaml > job.request`"));
  }
  auto request = PrepareSubmit(job_file, overrides);
  if (!request.ok()) return Fail(request.status());
  const std::string bytes = request->SerializeAsString();
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
      std::fflush(stdout) != 0) {
    return Fail(absl::InternalError(
        absl::StrCat("cannot write the request to stdout: ", std::strerror(errno))));
  }
  return 0;
}

int StatusCommand(JobClient& client, const std::string& job_id, const std::string& output) {
  auto st = client.Get(job_id);
  if (!st.ok()) return Fail(st.status());
  if (output == "json") {
    std::printf("%s\n", StatusJson(*st).c_str());
  } else {
    std::fputs(StatusText(*st).c_str(), stdout);
  }
  return 0;
}

int WatchCommand(JobClient& client, const std::string& job_id) { return Follow(client, job_id); }

int ListCommand(JobClient& client, const std::string& output) {
  auto jobs = client.List(100);
  if (!jobs.ok()) return Fail(jobs.status());
  if (output == "json") {
    std::string out = "[";
    for (size_t i = 0; i < jobs->size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", StatusJson((*jobs)[i]));
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-32s %-12s %-10s %12s %12s %8s\n", "JOB", "OWNER", "STATE", "ITEMS DONE",
              "ITEMS TOTAL", "FAILED");
  for (const auto& j : *jobs) {
    const auto& c = j.counts();
    std::printf("%-32s %-12s %-10s %12lld %12lld %8lld\n", j.job_id().c_str(), j.owner().c_str(),
                JobStateName(j.state()).c_str(),
                static_cast<long long>(c.items_succeeded() + c.items_failed()),
                static_cast<long long>(c.items_total()), static_cast<long long>(c.items_failed()));
  }
  return 0;
}

int CancelCommand(JobClient& client, const std::string& job_id) {
  auto st = client.Cancel(job_id);
  if (!st.ok()) return Fail(st.status());
  // The end is published once the agents stopped the job's workers and
  // shipped their last logs: wait for it, so that what follows sees it.
  Clock* clock = RealClock::Get();
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  while (!IsTerminal(st->state()) && clock->Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // polling the master for the end
    st = client.Get(job_id);
    if (!st.ok()) return Fail(st.status());
  }
  std::fprintf(stderr, "prs: job %s %s\n", job_id.c_str(),
               IsTerminal(st->state()) ? "cancelled" : "cancelled; its workers are still stopping");
  return 0;
}

int NodesCommand(JobClient& client, const std::string& output) {
  auto agents = client.ListAgents();
  if (!agents.ok()) return Fail(agents.status());
  if (output == "json") {
    std::string out = "[";
    for (int i = 0; i < agents->agents_size(); ++i) {
      const auto& a = agents->agents(i);
      absl::StrAppendFormat(&out,
                            "%s{\"node_id\": \"%s\", \"hostname\": "
                            "\"%s\", \"ip\": \"%s\", \"pid\": %d, \"last_seen_ms_ago\": %d, "
                            "\"job_id\": \"%s\", \"leases\": %d, \"busy_workers\": %d, \"gpus\": [",
                            i ? ", " : "", JsonEscape(a.node_id()), JsonEscape(a.hostname()),
                            JsonEscape(a.ip()), a.pid(), a.last_seen_ms_ago(),
                            JsonEscape(a.job_id()), a.leases(), a.busy_workers());
      for (int g = 0; g < a.gpus_size(); ++g) {
        absl::StrAppend(&out, g ? ", " : "", "\"", JsonEscape(a.gpus(g)), "\"");
      }
      out += "], \"running\": [";
      for (int r = 0; r < a.running_size(); ++r) {
        const auto& t = a.running(r);
        absl::StrAppendFormat(&out,
                              "%s{\"job_id\": \"%s\", \"task_id\": %d, \"process_name\": \"%s\", "
                              "\"running_ms\": %d}",
                              r ? ", " : "", JsonEscape(t.job_id()), t.task_id(),
                              JsonEscape(t.process_name()), t.running_ms());
      }
      out += "]}";
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-20s %-16s %-20s %8s %10s  %-10s %s\n", "NODE", "IP", "HOST", "PID", "SEEN", "GPUS",
              "JOB");
  for (const auto& a : agents->agents()) {
    const std::string gpus = a.gpus().empty() ? "-" : absl::StrJoin(a.gpus(), ",");
    std::printf("%-20s %-16s %-20s %8lld %8.1fs  %-10s %s\n", a.node_id().c_str(), a.ip().c_str(),
                a.hostname().c_str(), static_cast<long long>(a.pid()),
                a.last_seen_ms_ago() / 1000.0, gpus.c_str(),
                a.job_id().empty() ? "-" : a.job_id().c_str());
  }
  return 0;
}

int ResumeCommand(JobClient& client, const std::string& job_id, bool wait) {
  auto st = client.Resume(job_id);
  if (!st.ok()) return Fail(st.status());
  std::printf("%s\n", job_id.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "prs: job %s resumed: %lld of %lld mini-batches already done\n",
               job_id.c_str(), static_cast<long long>(st->counts().mini_batches_processed()),
               static_cast<long long>(st->counts().mini_batches_created()));
  return wait ? Follow(client, job_id) : 0;
}

}  // namespace prs::cli

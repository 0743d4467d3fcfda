#include "master/log_tree_writer.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/file_io.h"
#include "common/job_state.h"
#include "common/text.h"
#include "master/agent_registry.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace fs = std::filesystem;

const char kLogTreeReadme[] = R"(This folder is the log tree of one prs job. Start here.

job_result.txt            The end: SUCCEEDED, FAILED or CANCELLED, the reason, and the first
                          error with its mini-batch, node, process and traceback file.
job_progress_overview.txt Progress while the job runs: mini-batches created / processed /
                          failed, items succeeded / failed, rate, ETA; the result at the end.
sys/master_role.txt       The master's view: task creation, agents joining and leaving,
                          retries, mini-batches that failed, the result.
sys/job_report/processed_mini-batches.csv
                          One row per attempt: mini-batch, try, node, process, start, items
                          total / succeeded / failed, seconds, status (RUN_DONE, RUN_EXCEPTION,
                          RUN_TIMEOUT, WORKER_DIED, AGENT_LOST, INIT_FAILED, LOAD_FAILED), error.
sys/node/<node>/agent.txt The agent's view: the job starting and stopping, workers started and
                          how each ended (exit code or signal).
sys/node/<node>/<process>.txt
                          Two lines per mini-batch the worker ran: "picked" when it started and
                          "completed" with ip, pid, items total / succeeded / failed, start,
                          duration, process CPU time, run() time. Process numbers count up on
                          each node for each job; a replaced worker gets the next number.
user/error.txt            Each distinct error of the entry script, with its count and first
                          occurrence.
user/error/<node>/<process>.txt
                          The full traceback of every failed init() and run(), with the
                          mini-batch, the try and its input files.
user/stdout/<node>/<process>.stdout.txt, user/stderr/<node>/<process>.stderr.txt
                          What the entry script printed.
user/entry_script_log/<node>/<process>.log.txt
                          What the entry script logged through EntryScript().logger.
perf/<node>/              Resource use sampled every resource_monitor_interval seconds:
                          node_resource_usage.csv, processes_resource_usage.csv,
                          node_disk_usage.csv, and os/<YYYYmmddHH>/processes_<MM> (a ps listing).

To find a failed input: user/error.txt names each error and where it first happened; open
user/error/<node>/<process>.txt for its traceback and the mini-batch's input files. <node> is
the agent's --node-id (its host name by default). Files under user/, sys/node/ and perf/ are
shipped by the agents as they grow; `prs logs JOB [PATH] [--follow]` reads them remotely.
)";

namespace {

constexpr const char* kReportHeader =
    "Mini-batch Id,Try,Node,Agent,Process,Pid,Start Time,Items Total,Items Succeeded,"
    "Items Failed,Elapsed Seconds,Run Method Seconds,Process Seconds,Status,Error\n";

std::string ErrorSummary(const Job& job) {
  std::vector<std::pair<std::string, const Job::ErrorSummary*>> sorted;
  for (const auto& [error, summary] : job.errors) sorted.emplace_back(error, &summary);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second->count > b.second->count; });
  std::string text =
      absl::StrCat("Distinct errors of job ", job.job_id, ", most frequent first.\n\n");
  for (const auto& [error, summary] : sorted) {
    absl::StrAppend(&text, summary->count, " x ", error, "\n    first: ", summary->first, "\n");
  }
  return text;
}

// "Mini-batches created: N" and what it waits for.
std::string CreatedNote(const Job& job) {
  const auto& c = job.counts;
  const bool active = job.active();
  const bool planned = job.plans_pending == 0 && (!job.keys_mode() || job.groups_done);
  std::string note = !c.listing_done() && !active ? " (listing stopped)"
                     : !c.listing_done()          ? " (listing inputs...)"
                     : planned                    ? " (all)"
                     : !active                    ? ""
                     : job.plans_pending > 0      ? " (files being planned...)"
                                                  : " (making the partition_keys mini-batches...)";
  if (c.plans() > 0) absl::StrAppend(&note, ", ", c.plans(), " of them plans of tabular files");
  return note;
}

std::string Overview(const Job& job, absl::Time now) {
  const auto& c = job.counts;
  const bool active = job.active();
  const int64_t done = c.items_succeeded() + c.items_failed();
  const int64_t remaining = c.items_total() - done;
  std::string eta = "unknown";
  const double rate = job.ItemsPerSecond(now);  // at the end: over the whole run
  if (!active) {
    eta = "-";
  } else if (!c.listing_done()) {
    eta = "unknown (inputs still being listed)";
  } else if (rate > 0) {
    eta = FormatDuration(static_cast<double>(remaining) / rate);
  }
  std::string text = absl::StrFormat(
      "Job: %s (%s)\nState: %s\nUpdated: %s UTC\n\n"
      "Mini-batches created: %d%s\nMini-batches processed: %d\nMini-batches failed: %d\n"
      "Mini-batches in progress: %d\nMini-batches retried: %d\n\n"
      "Items total: %d\nItems succeeded: %d\nItems failed: %d\nRows written: %d\n\n"
      "Agents: %d\nRate: %.1f items/s\nETA: %s\n",
      job.job_id, job.spec.name(), JobStateName(job.state), LogTimestamp(now),
      c.mini_batches_created(), CreatedNote(job), c.mini_batches_processed(),
      c.mini_batches_failed(), job.leases.leased(), c.retries(), c.items_total(),
      c.items_succeeded(), c.items_failed(), c.rows_written(), job.agents.size(), rate, eta);
  if (!active) {
    absl::StrAppend(&text, "\nResult: ", JobStateName(job.state), job.reason.empty() ? "" : ": ",
                    job.reason, "\n");
  }
  return text;
}

std::string Result(const Job& job) {
  const auto& c = job.counts;
  std::string text = absl::StrCat(JobStateName(job.state), "\n");
  if (!job.reason.empty()) absl::StrAppend(&text, "Reason: ", job.reason, "\n");
  if (!job.first_error.empty()) absl::StrAppend(&text, "First error: ", job.first_error, "\n");
  absl::StrAppend(&text, "Mini-batches: ", c.mini_batches_processed(), " processed, ",
                  c.mini_batches_failed(), " failed of ", c.mini_batches_created(),
                  "\nItems: ", c.items_succeeded(), " succeeded, ", c.items_failed(), " failed of ",
                  c.items_total(), "\n");
  if (!job.output_file.empty()) {
    absl::StrAppend(&text, "Output: ", job.output_file, " (", c.rows_written(), " rows)\n");
  }
  if (!job.owner.empty()) absl::StrAppend(&text, "Owner: ", job.owner, "\n");
  for (const auto& note : job.notes) absl::StrAppend(&text, "Note: ", note, "\n");
  return text;
}

}  // namespace

std::string LogTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S", t, absl::UTCTimeZone());
}

std::string MasterRoleLine(absl::Time now, const std::string& level, const std::string& message) {
  // One record per line: text from agents or scripts (a node id, an error)
  // cannot start a forged record of its own.
  // U+2028 and U+2029 end a line for some readers (Python's splitlines).
  const std::string text = absl::StrReplaceAll(Printable(message, 64 << 10),
                                               {{"\u2028", "\\u2028"}, {"\u2029", "\\u2029"}});
  return absl::StrFormat("%s|%s|%d|master|%s", LogTimestamp(now), level, ::getpid(), text);
}

std::string ReportRow(const AttemptRecord& a, int64_t item_count) {
  const auto& r = a.result;
  const int64_t ok = r.status() == v1::RUN_DONE ? r.items_succeeded() : 0;
  const std::string start =
      r.start_time_ms() > 0 ? LogTimestamp(absl::FromUnixMillis(r.start_time_ms())) : "";
  return absl::StrFormat("%d,%d,%s,%s,%s,%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%s,%s\n", a.task_id,
                         a.attempt, CsvField(a.node_id), CsvField(SessionLabel(a.agent_id)),
                         CsvField(r.process_name()), r.pid(), start, item_count, ok,
                         item_count - ok, r.elapsed_seconds(), r.run_seconds(), r.cpu_seconds(),
                         v1::AttemptStatus_Name(r.status()), CsvField(r.error()));
}

void NoteError(Job& job, const AttemptRecord& a, absl::Time now) {
  const auto& r = a.result;
  // Memory and user/error.txt stay bounded whatever a script prints: past
  // kMaxDistinctErrors, new errors are counted together.
  const bool known = job.errors.count(r.error()) > 0;
  auto& e = job.errors[known || job.errors.size() < kMaxDistinctErrors ? r.error()
                                                                       : std::string(kOtherErrors)];
  if (e.count++ == 0) {
    e.order = ++job.error_order;
    e.first = absl::StrCat(LogTimestamp(now), " UTC, mini-batch ", a.task_id, " try ", a.attempt,
                           ", node ", a.node_id);
    if (!r.process_name().empty()) absl::StrAppend(&e.first, ", ", r.process_name());
    if (!r.error_detail().empty() && !r.process_name().empty()) {
      // A partial success has the mini-batch's inputs there, no traceback.
      absl::StrAppend(&e.first, r.status() == v1::RUN_DONE ? "; inputs in" : "; traceback in",
                      " user/error/", a.node_id, "/", r.process_name(), ".txt");
    }
  }
  job.errors_changed = true;
}

bool NeedsFlush(const Job& job) {
  return !job.events.empty() || !job.report_rows.empty() || job.errors_changed ||
         job.written_version != job.version || job.active();
}

LogTreeUpdate Collect(Job& job, absl::Time now) {
  LogTreeUpdate u;
  u.job = &job;
  u.log_dir = job.log_dir;
  u.events.swap(job.events);
  u.report_rows.swap(job.report_rows);
  if (job.errors_changed) {
    u.error_summary = ErrorSummary(job);
    job.errors_changed = false;
  }
  u.overview = Overview(job, now);
  if (!job.active() && !job.result_written) {
    u.result = Result(job);
    job.result_written = true;
    u.finished = true;
  }
  job.written_version = job.version;
  return u;
}

void Write(LogTreeUpdate& u) {
  const fs::path dir(u.log_dir);
  MakeDirs((dir / "sys").string()).IgnoreError();
  if (!u.events.empty()) {
    std::string text;
    for (const auto& e : u.events) absl::StrAppend(&text, e, "\n");
    if (auto s = AppendToFile((dir / "sys" / "master_role.txt").string(), text); !s.ok()) {
      spdlog::error("writing master_role.txt failed, will retry: {}", std::string(s.message()));
      u.events_failed = true;
    }
  }
  if (!u.report_rows.empty()) {
    const fs::path csv = dir / "sys" / "job_report" / "processed_mini-batches.csv";
    std::string text;
    std::error_code ec;
    if (!fs::exists(csv, ec)) text = kReportHeader;
    for (const auto& row : u.report_rows) text += row;
    if (auto s = AppendToFile(csv.string(), text); !s.ok()) {
      spdlog::error("writing processed_mini-batches.csv failed, will retry: {}",
                    std::string(s.message()));
      u.rows_failed = true;
    }
  }
  if (!u.error_summary.empty()) {
    MakeDirs((dir / "user").string()).IgnoreError();
    u.errors_failed = !WriteFileAtomic((dir / "user" / "error.txt").string(), u.error_summary).ok();
  }
  // Rewritten whole at every flush: a failure heals at the next.
  WriteFileAtomic((dir / "job_progress_overview.txt").string(), u.overview).IgnoreError();
  if (!u.result.empty()) {
    if (auto s = WriteFileAtomic((dir / "job_result.txt").string(), u.result); !s.ok()) {
      spdlog::error("writing job_result.txt failed, will retry: {}", std::string(s.message()));
      u.result_failed = true;
    }
  }
}

void Restore(LogTreeUpdate& u) {
  Job& job = *u.job;
  if (u.events_failed) {
    job.events.insert(job.events.begin(), std::make_move_iterator(u.events.begin()),
                      std::make_move_iterator(u.events.end()));
  }
  if (u.rows_failed) {
    job.report_rows.insert(job.report_rows.begin(), std::make_move_iterator(u.report_rows.begin()),
                           std::make_move_iterator(u.report_rows.end()));
  }
  if (u.errors_failed) job.errors_changed = true;
  if (u.result_failed) {
    job.result_written = false;
    job.written_version = -1;
  } else if (u.finished) {
    job.result_flushed = true;
  }
}

}  // namespace prs::master

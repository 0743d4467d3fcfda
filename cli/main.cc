// prs: run a job locally, or submit and follow jobs on a prs-master.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/agent.h"
#include "cli/client.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/paths.h"
#include "common/signals.h"
#include "common/sizes.h"
#include "common/text.h"
#include "master/master_server.h"
#include "spdlog/spdlog.h"

namespace {
namespace fs = std::filesystem;
using prs::cli::JobClient;

constexpr int kExitJobFailed = 1;
constexpr int kExitUsage = 2;

int Fail(const absl::Status& s) {
  // A message may quote what a file held: never send raw control bytes to
  // the terminal.
  std::fprintf(stderr, "prs: error: %s\n", prs::PrintableText(s.message()).c_str());
  return s.code() == absl::StatusCode::kUnavailable ? 3 : kExitUsage;
}

int ExitFor(const prs::v1::JobStatus& st) {
  return st.state() == prs::v1::SUCCEEDED ? 0 : kExitJobFailed;
}

// Follows a job to its end with progress on stderr; prints the summary.
// `final_out` receives the terminal status.
int Follow(JobClient& client, const std::string& job_id, prs::v1::JobStatus* final_out = nullptr) {
  prs::cli::ProgressPrinter progress(::isatty(2) != 0);
  auto final_status = client.Watch(job_id, [&](const auto& st) { progress.Update(st); });
  progress.Done();
  if (!final_status.ok()) return Fail(final_status.status());
  std::fputs(prs::cli::StatusText(*final_status).c_str(), stderr);
  if (final_out != nullptr) *final_out = *final_status;
  return ExitFor(*final_status);
}

std::string DefaultRunDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string base = tmp && *tmp ? tmp : "/tmp";
  const std::string stamp = absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::LocalTimeZone());
  return absl::StrCat(base, "/prs/runs/", name, "-", stamp, "-", ::getpid());
}

// How the user invoked prs: "prs" when it was found on PATH, else its path,
// so that a command prs prints can be pasted as it is.
std::string& PrsCommand() {
  static std::string* const command = new std::string("prs");
  return *command;
}

// A master and an agent in this process, on loopback, for `prs run` and
// `prs resume --state-dir`.
class LocalCluster {
 public:
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const std::string& state_dir) {
    auto c = std::unique_ptr<LocalCluster>(new LocalCluster());
    prs::master::MasterOptions mo;
    mo.listen = "127.0.0.1:0";
    mo.manager.state_dir = state_dir;
    mo.manager.heartbeat_interval = absl::Seconds(1);
    mo.executor_threads = 2;
    auto master = prs::master::MasterServer::Create(mo);
    if (!master.ok()) return master.status();
    c->master_ = *std::move(master);
    c->address_ = absl::StrCat("127.0.0.1:", c->master_->port());
    prs::agent::AgentOptions ao;
    ao.master_address = c->address_;
    ao.work_dir = state_dir;
    ao.node_id = prs::HostName();
    ao.pull_wait = absl::Seconds(2);
    ao.ship_logs = false;  // the agent writes straight into the master's log tree
    auto agent = prs::agent::Agent::Create(ao);
    if (!agent.ok()) {
      c->master_->Shutdown();
      return agent.status();
    }
    c->agent_ = *std::move(agent);
    c->agent_thread_ = std::thread([a = c->agent_.get()] { a->Run(); });
    return c;
  }
  ~LocalCluster() {
    agent_->Stop();
    agent_thread_.join();
    master_->Shutdown();
  }
  const std::string& address() const { return address_; }

 private:
  LocalCluster() = default;
  std::unique_ptr<prs::master::MasterServer> master_;
  std::unique_ptr<prs::agent::Agent> agent_;
  std::thread agent_thread_;
  std::string address_;
};

// Ctrl-C (or SIGTERM) while a local job runs: the first cancels the job, so
// that it ends cleanly and can be resumed; a second exits at once.
class Interrupts {
 public:
  // The one handler of the process; it lives as long as the process, as does
  // its thread.
  static Interrupts& Install() {
    static Interrupts* const interrupts = new Interrupts();
    return *interrupts;
  }

 private:
  Interrupts() {
    prs::BlockTerminationSignals();  // before the cluster's threads start
    std::thread([this] {
      for (;;) {
        const int sig = prs::WaitForTerminationSignal();
        std::string job_id, address;
        {
          absl::MutexLock lock(&mu_);
          if (signal_ != 0) {
            std::fprintf(stderr, "\nprs: interrupted again; exiting now%s\n",
                         job_id_.empty() ? "" : absl::StrCat(" (", ResumeHint(), ")").c_str());
            std::fflush(stderr);
            ::_exit(128 + sig);
          }
          signal_ = sig;
          job_id = job_id_;
          address = address_;
        }
        std::fprintf(stderr,
                     "\nprs: interrupted; stopping the job and its workers (press Ctrl-C "
                     "again to exit at once)\n");
        if (!job_id.empty()) JobClient(address).Cancel(job_id).IgnoreError();
      }
    }).detach();  // blocked in sigwait for the life of the process
  }

 public:
  // The job to cancel on an interrupt; true when one came already.
  bool Watch(const std::string& job_id, const std::string& address, const std::string& state_dir) {
    absl::MutexLock lock(&mu_);
    job_id_ = job_id;
    address_ = address;
    state_dir_ = state_dir;
    return signal_ != 0;
  }
  int signal() {
    absl::MutexLock lock(&mu_);
    return signal_;
  }
  std::string ResumeHint() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::StrCat("continue it with: ", PrsCommand(), " resume ", job_id_, " --state-dir ",
                        state_dir_);
  }
  // What the user reads after an interrupted run: what happened, and how to go on.
  void Report(const prs::v1::JobStatus& st) {
    absl::MutexLock lock(&mu_);
    const auto& c = st.counts();
    std::fprintf(
        stderr,
        "prs: job %s was interrupted and is %s: %lld of %lld mini-batches done%s.\n"
        "prs: its state is in %s; %s\n",
        st.job_id().c_str(), prs::JobStateName(st.state()).c_str(),
        static_cast<long long>(c.mini_batches_processed()),
        static_cast<long long>(c.mini_batches_created()),
        st.output_file().empty() ? "" : absl::StrCat(", their rows in ", st.output_file()).c_str(),
        state_dir_.c_str(), ResumeHint().c_str());
  }

 private:
  absl::Mutex mu_;
  int signal_ ABSL_GUARDED_BY(mu_) = 0;
  std::string job_id_ ABSL_GUARDED_BY(mu_);
  std::string address_ ABSL_GUARDED_BY(mu_);
  std::string state_dir_ ABSL_GUARDED_BY(mu_);
};

// Follows a local job to its end; prints the output path on success and the
// way to continue after an interrupt.
int FollowLocal(JobClient& client, Interrupts& interrupts, const std::string& job_id,
                const std::string& address, const std::string& state_dir) {
  if (interrupts.Watch(job_id, address, state_dir)) client.Cancel(job_id).IgnoreError();
  prs::v1::JobStatus final_status;
  int rc = Follow(client, job_id, &final_status);
  if (interrupts.signal() != 0 && final_status.state() != prs::v1::SUCCEEDED) {
    if (!final_status.job_id().empty()) interrupts.Report(final_status);
    return 128 + interrupts.signal();
  }
  // The output's path, alone on stdout, for scripts.
  if (rc == 0 && !final_status.output_file().empty()) {
    std::printf("%s\n", final_status.output_file().c_str());
  } else if (final_status.output_file().empty() && final_status.output_dir().empty() &&
             !final_status.job_id().empty()) {
    // summary_only without an output key: the local agent's folder.
    std::fprintf(stderr, "prs: EntryScript().output_dir was %s\n",
                 (fs::path(state_dir) / "jobs" / job_id / "output").c_str());
  }
  return rc;
}

int RunLocal(const std::string& job_file, const std::vector<std::string>& overrides,
             std::string state_dir) {
  auto request = prs::cli::PrepareSubmit(job_file, overrides);
  if (!request.ok()) return Fail(request.status());
  if (state_dir.empty()) state_dir = DefaultRunDir(request->spec().name());
  state_dir = fs::absolute(state_dir).lexically_normal().string();
  std::fprintf(stderr, "prs: local run, state in %s\n", state_dir.c_str());
  Interrupts& interrupts = Interrupts::Install();
  auto cluster = LocalCluster::Start(state_dir);
  if (!cluster.ok()) return Fail(cluster.status());
  JobClient client((*cluster)->address());
  auto submitted = client.Submit(*request);
  if (!submitted.ok()) return Fail(submitted.status());
  std::fprintf(stderr, "prs: job %s submitted; logs in %s\n", submitted->job_id().c_str(),
               submitted->log_dir().c_str());
  for (const auto& w : submitted->warnings()) {
    std::fprintf(stderr, "prs: note: %s\n", prs::Printable(w, 2000).c_str());
  }
  return FollowLocal(client, interrupts, submitted->job_id(), (*cluster)->address(), state_dir);
}

// `prs resume JOB --state-dir DIR`: a job of a local run (interrupted, failed,
// or whose `prs run` was killed) continues in this process.
int ResumeLocal(const std::string& job_id, std::string state_dir) {
  state_dir = fs::absolute(state_dir).lexically_normal().string();
  std::error_code ec;
  if (!fs::exists(fs::path(state_dir) / "state.db", ec)) {
    return Fail(
        absl::NotFoundError(absl::StrCat("--state-dir ", state_dir,
                                         " holds no prs state (no state.db); give the folder that "
                                         "`prs run` printed")));
  }
  std::fprintf(stderr, "prs: local run, state in %s\n", state_dir.c_str());
  Interrupts& interrupts = Interrupts::Install();
  auto cluster = LocalCluster::Start(state_dir);
  if (!cluster.ok()) return Fail(cluster.status());
  JobClient client((*cluster)->address());
  auto st = client.Get(job_id);
  if (!st.ok()) return Fail(st.status());
  if (prs::IsTerminal(st->state())) {
    // A job that was running when its process died continues by itself.
    auto resumed = client.Resume(job_id);
    if (!resumed.ok()) return Fail(resumed.status());
    std::fprintf(stderr, "prs: job %s resumed: %lld of %lld mini-batches already done\n",
                 job_id.c_str(), static_cast<long long>(resumed->counts().mini_batches_processed()),
                 static_cast<long long>(resumed->counts().mini_batches_created()));
  } else {
    std::fprintf(stderr, "prs: job %s continues where it stopped\n", job_id.c_str());
  }
  return FollowLocal(client, interrupts, job_id, (*cluster)->address(), state_dir);
}

// `prs clean-outputs DIR`: removes the earlier outputs that jobs moved aside
// ("<file>.<YYYYmmdd-HHMMSS>.before-<job>") from an output folder.
int CleanOutputs(const std::string& dir, bool dry_run) {
  static const std::regex kAside(R"(.+\.\d{8}-\d{6}\.before-[a-z][-a-z0-9]*-\d+(\.\d+)?)");
  std::error_code ec;
  std::vector<fs::path> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && std::regex_match(it->path().filename().string(), kAside)) {
      found.push_back(it->path());
    }
  }
  if (ec) return Fail(absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message())));
  std::sort(found.begin(), found.end());
  int64_t bytes = 0;
  for (const auto& p : found) {
    std::error_code fec;
    const auto size = fs::file_size(p, fec);
    if (!dry_run && !fs::remove(p, fec)) {
      std::fprintf(stderr, "prs: cannot remove %s: %s\n", p.c_str(), fec.message().c_str());
      continue;
    }
    bytes += fec ? 0 : static_cast<int64_t>(size);
    std::printf("%s%s\n", dry_run ? "would remove " : "removed ", p.c_str());
  }
  std::fprintf(stderr, "prs: %s %zu earlier outputs moved aside by prs (%s) in %s\n",
               dry_run ? "would remove" : "removed", found.size(), prs::FormatBytes(bytes).c_str(),
               dir.c_str());
  return 0;
}

// Log bytes for stdout: as they are into a pipe or a file (an exact copy),
// with control bytes escaped on a terminal (a script's colours and bells,
// a path that is not UTF-8, must not drive it). Also for --errors, always.
void WriteLogBytes(const std::string& data, bool escape) {
  if (!escape) {
    std::fwrite(data.data(), 1, data.size(), stdout);
    return;
  }
  const std::string text = prs::PrintableText(data);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

bool StdoutIsTerminal() { return ::isatty(1) != 0; }

// Prints `path` from `offset`; returns the new offset, or -1 on error.
int64_t PrintLog(JobClient& client, const std::string& job_id, const std::string& path,
                 int64_t offset, bool escape = StdoutIsTerminal()) {
  std::string carry;  // the start of a character cut by the chunk's end
  for (;;) {
    auto chunk = client.ReadLog(job_id, path, offset, 1 << 20);
    if (!chunk.ok()) {
      Fail(chunk.status());
      return -1;
    }
    offset += static_cast<int64_t>(chunk->data().size());
    const bool last = chunk->data().empty() || offset >= chunk->size();
    std::string data = carry + chunk->data();
    carry.clear();
    if (escape && !last) {
      // Hold back an unfinished UTF-8 character for the next chunk.
      size_t lead = data.size();
      for (size_t back = 1; back <= 3 && back <= data.size(); ++back) {
        const auto c = static_cast<unsigned char>(data[data.size() - back]);
        if ((c & 0xC0) != 0x80) {
          lead = data.size() - back;
          break;
        }
      }
      const auto c = lead < data.size() ? static_cast<unsigned char>(data[lead]) : 0;
      const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      if (lead < data.size() && lead + need > data.size()) {
        carry = data.substr(lead);
        data.resize(lead);
      }
    }
    WriteLogBytes(data, escape);
    if (last) return offset;
  }
}

int Logs(JobClient& client, const std::string& job_id, const std::string& path, bool follow,
         bool errors) {
  if (errors) {
    auto list = client.ListLogs(job_id);
    if (!list.ok()) return Fail(list.status());
    bool have_summary = false;
    std::string first_trace;
    for (const auto& f : list->files()) {
      if (f.path() == "user/error.txt") have_summary = true;
      if (first_trace.empty() && f.path().rfind("user/error/", 0) == 0) first_trace = f.path();
    }
    // The traceback of the job's first error, as job_result.txt names it.
    if (auto st = client.Get(job_id); st.ok()) {
      if (!st->reused_from().empty()) {
        std::fprintf(stderr,
                     "prs: job %s took its result from job %s (allow_reuse) and ran nothing; "
                     "its errors: prs logs %s --errors\n",
                     job_id.c_str(), st->reused_from().c_str(), st->reused_from().c_str());
        return 0;
      }
      const std::string& fe = st->first_error();
      const auto at = fe.find("logs/user/error/");
      const auto end = fe.find(".txt", at);
      if (at != std::string::npos && end != std::string::npos) {
        first_trace = fe.substr(at + 5, end + 4 - (at + 5));
      }
    }
    if (!have_summary && first_trace.empty()) {
      std::fprintf(stderr, "prs: job %s has no errors in its log tree\n", job_id.c_str());
      return 0;
    }
    if (have_summary && PrintLog(client, job_id, "user/error.txt", 0, /*escape=*/true) < 0) {
      return 1;
    }
    if (!first_trace.empty()) {
      std::printf("\n==> %s <==\n", first_trace.c_str());
      // The first traceback: the file's first record, up to its blank line.
      auto chunk = client.ReadLog(job_id, first_trace, 0, 64 << 10);
      if (!chunk.ok()) return Fail(chunk.status());
      const std::string& d = chunk->data();
      const size_t end = d.find("\n\n");
      WriteLogBytes(d.substr(0, end == std::string::npos ? d.size() : end + 1), /*escape=*/true);
    }
    return 0;
  }
  if (path.empty()) {
    auto list = client.ListLogs(job_id);
    if (!list.ok()) return Fail(list.status());
    std::fprintf(stderr, "prs: log tree of %s in %s on the master\n", job_id.c_str(),
                 list->log_dir().c_str());
    for (const auto& f : list->files()) {
      std::printf("%10lld  %s\n", static_cast<long long>(f.size()), f.path().c_str());
    }
    return 0;
  }
  if (follow) {
    // A file the job has not written yet: wait for it while the job runs.
    // The end is published once the log tree is complete, so a file that is
    // missing then will not come.
    for (;;) {
      auto chunk = client.ReadLog(job_id, path, 0, 1);
      if (chunk.ok() || chunk.status().code() != absl::StatusCode::kNotFound) break;
      auto st = client.Get(job_id);
      if (!st.ok()) return Fail(st.status());
      if (prs::IsTerminal(st->state())) {
        return Fail(
            absl::NotFoundError(absl::StrCat("job ", job_id, " ended without writing ", path,
                                             "; `prs logs ", job_id, "` lists its files")));
      }
      absl::SleepFor(absl::Milliseconds(500));  // polling for the file to appear
    }
  }
  int64_t offset = PrintLog(client, job_id, path, 0);
  if (offset < 0) return 1;
  // The end is published once every agent shipped its last logs: one more
  // read after it sees everything.
  while (follow) {
    std::fflush(stdout);
    auto st = client.Get(job_id);
    if (!st.ok()) return Fail(st.status());
    const bool ended = prs::IsTerminal(st->state());
    if (!ended) absl::SleepFor(absl::Milliseconds(500));  // polling the file for new bytes
    offset = PrintLog(client, job_id, path, offset);
    if (offset < 0) return 1;
    if (ended) break;
  }
  return 0;
}

std::string DefaultMaster() {
  const char* env = std::getenv("PRS_MASTER");
  return env && *env ? env : "127.0.0.1:7600";
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc > 0 && std::strchr(argv[0], '/') != nullptr) {
    std::error_code ec;
    PrsCommand() = fs::absolute(argv[0], ec).lexically_normal().string();
  }
  CLI::App app{"prs: parallel batch inference, ParallelRunStep-compatible"};
  app.require_subcommand(1);
  app.fallthrough();  // --master may come after the subcommand too
  std::string master = DefaultMaster();
  std::string log_level = "warn";
  app.add_option("--master", master,
                 "host:port of prs-master (default $PRS_MASTER, then 127.0.0.1:7600)");
  app.add_option("--log-level", log_level, "log level of the embedded daemons (prs run)");

  std::string job_file, job_id, state_dir, output = "text";
  std::vector<std::string> overrides;
  bool wait = false;

  auto* run = app.add_subcommand("run", "run a job on this machine (embedded master and agent)");
  run->add_option("job_file", job_file, "the job's YAML file")->required();
  run->add_option("--set", overrides, "override a key of the job file: key=value")->take_all();
  run->add_option("--state-dir", state_dir,
                  "folder for state and logs (default: a new folder under /tmp/prs/runs)");

  auto* submit = app.add_subcommand("submit", "submit a job to prs-master; prints its id");
  submit->add_option("job_file", job_file, "the job's YAML file")->required();
  submit->add_option("--set", overrides, "override a key of the job file: key=value")->take_all();
  submit->add_flag("--wait", wait, "follow the job until it ends; exit 0 only if it succeeded");

  auto* status = app.add_subcommand("status", "show a job's state and counts");
  status->add_option("job", job_id, "job id")->required();
  status->add_option("--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));

  auto* watch =
      app.add_subcommand("watch", "show progress until the job ends; exit 0 only on success");
  watch->add_option("job", job_id, "job id")->required();

  auto* list = app.add_subcommand("list", "list jobs, newest first");
  list->add_option("--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));

  auto* cancel = app.add_subcommand("cancel", "cancel a queued or running job");
  cancel->add_option("job", job_id, "job id")->required();

  auto* nodes = app.add_subcommand("nodes", "list the agents the master knows");
  nodes->add_option("--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));

  std::string log_path;
  bool follow = false, errors = false;
  auto* logs = app.add_subcommand(
      "logs", "list a job's log tree, print one file (--follow to keep reading), or --errors");
  logs->add_option("job", job_id, "job id")->required();
  logs->add_option("path", log_path, "a file of the tree, relative to its logs/ folder");
  logs->add_flag("--follow,-f", follow, "keep printing what is appended until the job ends");
  logs->add_flag("--errors", errors, "print user/error.txt and the first traceback");

  auto* resume = app.add_subcommand(
      "resume", "run a FAILED or CANCELLED job's failed and unprocessed mini-batches again");
  resume->add_option("job", job_id, "job id")->required();
  resume->add_flag("--wait", wait, "follow the job until it ends; exit 0 only if it succeeded");
  resume->add_option("--state-dir", state_dir,
                     "continue a job of `prs run` here, from the state folder it printed "
                     "(embedded master and agent; follows the job)");

  std::string clean_dir;
  bool dry_run = false;
  auto* clean = app.add_subcommand(
      "clean-outputs", "remove the earlier outputs that jobs moved aside in an output folder");
  clean->add_option("folder", clean_dir, "the output folder")->required();
  clean->add_flag("--dry-run", dry_run, "only list what would be removed");

  CLI11_PARSE(app, argc, argv);
  prs::SetUpLogging("prs", log_level);

  if (*run) return RunLocal(job_file, overrides, state_dir);
  if (*resume && !state_dir.empty()) return ResumeLocal(job_id, state_dir);
  if (*clean) return CleanOutputs(clean_dir, dry_run);

  JobClient client(master);
  if (*submit) {
    auto request = prs::cli::PrepareSubmit(job_file, overrides);
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
  if (*status) {
    auto st = client.Get(job_id);
    if (!st.ok()) return Fail(st.status());
    if (output == "json") {
      std::printf("%s\n", prs::cli::StatusJson(*st).c_str());
    } else {
      std::fputs(prs::cli::StatusText(*st).c_str(), stdout);
    }
    return 0;
  }
  if (*watch) return Follow(client, job_id);
  if (*list) {
    auto jobs = client.List(100);
    if (!jobs.ok()) return Fail(jobs.status());
    if (output == "json") {
      std::string out = "[";
      for (size_t i = 0; i < jobs->size(); ++i) {
        absl::StrAppend(&out, i ? ", " : "", prs::cli::StatusJson((*jobs)[i]));
      }
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    std::printf("%-32s %-10s %12s %12s %8s\n", "JOB", "STATE", "ITEMS DONE", "ITEMS TOTAL",
                "FAILED");
    for (const auto& j : *jobs) {
      const auto& c = j.counts();
      std::printf("%-32s %-10s %12lld %12lld %8lld\n", j.job_id().c_str(),
                  prs::JobStateName(j.state()).c_str(),
                  static_cast<long long>(c.items_succeeded() + c.items_failed()),
                  static_cast<long long>(c.items_total()),
                  static_cast<long long>(c.items_failed()));
    }
    return 0;
  }
  if (*cancel) {
    auto st = client.Cancel(job_id);
    if (!st.ok()) return Fail(st.status());
    // The end is published once the agents stopped the job's workers and
    // shipped their last logs: wait for it, so that what follows sees it.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!prs::IsTerminal(st->state()) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));  // polling the master for the end
      st = client.Get(job_id);
      if (!st.ok()) return Fail(st.status());
    }
    std::fprintf(
        stderr, "prs: job %s %s\n", job_id.c_str(),
        prs::IsTerminal(st->state()) ? "cancelled" : "cancelled; its workers are still stopping");
    return 0;
  }
  if (*logs) return Logs(client, job_id, log_path, follow, errors);
  if (*nodes) {
    auto agents = client.ListAgents();
    if (!agents.ok()) return Fail(agents.status());
    if (output == "json") {
      std::string out = "[";
      for (int i = 0; i < agents->agents_size(); ++i) {
        const auto& a = agents->agents(i);
        absl::StrAppendFormat(&out,
                              "%s{\"node_id\": \"%s\", \"agent_id\": \"%s\", \"hostname\": "
                              "\"%s\", \"ip\": \"%s\", \"pid\": %d, \"last_seen_ms_ago\": %d, "
                              "\"job_id\": \"%s\", \"leases\": %d}",
                              i ? ", " : "", prs::JsonEscape(a.node_id()),
                              prs::JsonEscape(a.agent_id()), prs::JsonEscape(a.hostname()),
                              prs::JsonEscape(a.ip()), a.pid(), a.last_seen_ms_ago(),
                              prs::JsonEscape(a.job_id()), a.leases());
      }
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    std::printf("%-20s %-16s %-20s %8s %10s  %s\n", "NODE", "IP", "HOST", "PID", "SEEN", "JOB");
    for (const auto& a : agents->agents()) {
      std::printf("%-20s %-16s %-20s %8lld %8.1fs  %s\n", a.node_id().c_str(), a.ip().c_str(),
                  a.hostname().c_str(), static_cast<long long>(a.pid()),
                  a.last_seen_ms_ago() / 1000.0, a.job_id().empty() ? "-" : a.job_id().c_str());
    }
    return 0;
  }
  if (*resume) {
    auto st = client.Resume(job_id);
    if (!st.ok()) return Fail(st.status());
    std::printf("%s\n", job_id.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "prs: job %s resumed: %lld of %lld mini-batches already done\n",
                 job_id.c_str(), static_cast<long long>(st->counts().mini_batches_processed()),
                 static_cast<long long>(st->counts().mini_batches_created()));
    return wait ? Follow(client, job_id) : 0;
  }
  return kExitUsage;
}

// `prs run`, `prs resume --state-dir` and `prs clean-outputs`: what runs on
// this machine, with a master and an agent embedded in the process.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/agent.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/paths.h"
#include "common/signals.h"
#include "common/sizes.h"
#include "common/text.h"
#include "master/auth.h"
#include "master/master_server.h"

namespace prs::cli {
namespace {
namespace fs = std::filesystem;

std::string DefaultRunDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string base = tmp && *tmp ? tmp : "/tmp";
  const std::string stamp =
      absl::FormatTime("%Y%m%d-%H%M%S", RealClock::Get()->Now(), absl::LocalTimeZone());
  return absl::StrCat(base, "/prs/runs/", name, "-", stamp, "-", ::getpid());
}

// A master and an agent in this process, on loopback, for `prs run` and
// `prs resume --state-dir`.
class LocalCluster {
 public:
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(
      const std::string& state_dir,
      prs::master::Durability durability = prs::master::Durability::kProcess) {
    auto c = std::unique_ptr<LocalCluster>(new LocalCluster());
    // Loopback is every local user's: the embedded master takes only a token
    // made for this run, which only this process holds.
    c->token_ = prs::master::RandomId();
    prs::master::MasterOptions mo;
    mo.listen = "127.0.0.1:0";
    mo.local_token = c->token_;
    mo.manager.state_dir = state_dir;
    mo.manager.durability = durability;
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
    ao.token = c->token_;
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
  const std::string& token() const { return token_; }
  // How this process's clients reach the embedded master.
  JobClient Client() const { return JobClient(address_, Connection{{}, token_}); }

 private:
  LocalCluster() = default;
  std::unique_ptr<prs::master::MasterServer> master_;
  std::unique_ptr<prs::agent::Agent> agent_;
  std::thread agent_thread_;
  std::string address_;
  std::string token_;
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
        std::string job_id, address, token;
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
          token = token_;
        }
        std::fprintf(stderr,
                     "\nprs: interrupted; stopping the job and its workers (press Ctrl-C "
                     "again to exit at once)\n");
        if (!job_id.empty()) JobClient(address, Connection{{}, token}).Cancel(job_id).IgnoreError();
      }
    }).detach();  // blocked in sigwait for the life of the process
  }

 public:
  // The job to cancel on an interrupt; true when one came already.
  bool Watch(const std::string& job_id, const std::string& address, const std::string& token,
             const std::string& state_dir) {
    absl::MutexLock lock(&mu_);
    job_id_ = job_id;
    address_ = address;
    token_ = token;
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
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::string state_dir_ ABSL_GUARDED_BY(mu_);
};

// Follows a local job to its end; prints the output path on success and the
// way to continue after an interrupt.
int FollowLocal(JobClient& client, Interrupts& interrupts, const std::string& job_id,
                const std::string& address, const std::string& token,
                const std::string& state_dir) {
  if (interrupts.Watch(job_id, address, token, state_dir)) client.Cancel(job_id).IgnoreError();
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

}  // namespace

int RunLocalCommand(const std::string& job_file, const std::vector<std::string>& overrides,
                    const std::string& durability, std::string state_dir) {
  auto parsed = prs::master::ParseDurability(durability);
  if (!parsed.ok()) return Fail(parsed.status());
  auto request = prs::cli::PrepareSubmit(job_file, overrides);
  if (!request.ok()) return Fail(request.status());
  if (state_dir.empty()) state_dir = DefaultRunDir(request->spec().name());
  state_dir = fs::absolute(state_dir).lexically_normal().string();
  std::fprintf(stderr, "prs: local run, state in %s\n", state_dir.c_str());
  Interrupts& interrupts = Interrupts::Install();
  auto cluster = LocalCluster::Start(state_dir, *parsed);
  if (!cluster.ok()) return Fail(cluster.status());
  JobClient client = (*cluster)->Client();
  auto submitted = client.Submit(*request);
  if (!submitted.ok()) return Fail(submitted.status());
  std::fprintf(stderr, "prs: job %s submitted; logs in %s\n", submitted->job_id().c_str(),
               submitted->log_dir().c_str());
  for (const auto& w : submitted->warnings()) {
    std::fprintf(stderr, "prs: note: %s\n", prs::Printable(w, 2000).c_str());
  }
  return FollowLocal(client, interrupts, submitted->job_id(), (*cluster)->address(),
                     (*cluster)->token(), state_dir);
}

// `prs resume JOB --state-dir DIR`: a job of a local run (interrupted, failed,
// or whose `prs run` was killed) continues in this process.
int ResumeLocalCommand(const std::string& job_id, std::string state_dir) {
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
  JobClient client = (*cluster)->Client();
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
  return FollowLocal(client, interrupts, job_id, (*cluster)->address(), (*cluster)->token(),
                     state_dir);
}

// `prs clean-outputs DIR`: removes the earlier outputs that jobs moved aside
// ("<file>.<YYYYmmdd-HHMMSS>.before-<job>") from an output folder.
int CleanOutputsCommand(const std::string& dir, bool dry_run) {
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

}  // namespace prs::cli

#include "agent/agent.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <sys/stat.h>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/log_appender.h"
#include "agent/resource_monitor.h"
#include "agent/worker_process.h"
#include "common/file_io.h"
#include "common/grpc_defaults.h"
#include "common/job_config.h"
#include "common/paths.h"
#include "common/snapshot.h"
#include "common/status_grpc.h"
#include "common/tabular_descriptor.h"
#include "common/text.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {
namespace fs = std::filesystem;

constexpr int kReportBatch = 64;
constexpr int kReportTriesWhileStopping = 3;
constexpr absl::Duration kRpcDeadline = absl::Seconds(30);
constexpr absl::Duration kShutdownGrace = absl::Seconds(10);
constexpr absl::Duration kKillGrace = absl::Seconds(3);

// Exponential backoff with full jitter, capped.
class Backoff {
 public:
  absl::Duration Next() {
    const double cap = std::min(5.0, 0.1 * (1 << std::min(attempt_++, 6)));
    std::uniform_real_distribution<double> dist(cap / 2, cap);
    return absl::Seconds(dist(rng_));
  }
  void Reset() { attempt_ = 0; }

 private:
  int attempt_ = 0;
  std::mt19937 rng_{std::random_device{}()};
};

// A job as this agent runs it.
struct JobContext {
  std::string job_id;
  v1::JobSpec spec;
  std::string code_dir;
  std::string log_dir;
  std::string work_dir;
  std::string python;
  std::vector<std::string> arguments;
  std::map<std::string, std::string> env;
  int level = 1;                   // logging_level of the system logs: 0 DEBUG, 1 INFO, 2 WARNING
  std::atomic<bool> abort{false};  // kill running attempts (cancel, stop)
  std::map<std::string, pid_t> worker_pids;  // by process name; guarded by Agent::Impl::mu_
  std::unique_ptr<ResourceMonitor> monitor;  // set and reset by the puller thread
};

}  // namespace

class Agent::Impl {
 public:
  explicit Impl(const AgentOptions& options, std::string python_dir)
      : options_(options), python_dir_(std::move(python_dir)) {
    // Reconnect quickly after a master restart.
    grpc::ChannelArguments args = DefaultChannelArguments(absl::Milliseconds(200));
    auto channel =
        grpc::CreateCustomChannel(options.master_address, grpc::InsecureChannelCredentials(), args);
    stub_ = v1::AgentService::NewStub(channel);
    ip_ = PrimaryIp();
    gpu_count_ = std::max(0, options.gpus);
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < gpu_count_; ++i) free_gpus_.insert(i);
  }

  void Run() {
    std::thread heartbeat([this] { HeartbeatLoop(); });
    std::thread reporter([this] { ReporterLoop(); });
    std::thread shipper([this] { ShipLoop(); });
    PullLoop();
    StopJob(/*kill_running=*/false);
    {
      absl::MutexLock lock(&mu_);
      reporter_done_ = true;
    }
    heartbeat.join();
    reporter.join();
    shipper.join();
    Unregister();
    if (log_appender_.Retry() > 0 || log_appender_.dropped() > 0) {
      spdlog::error("some log records could not be written: {} dropped", log_appender_.dropped());
    }
  }

  void Stop() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (pull_ctx_ != nullptr) pull_ctx_->TryCancel();
  }

 private:
  // --- Session --------------------------------------------------------------
  // The current session id, registering (with backoff) when there is none.
  // Empty only when stopping.
  std::string EnsureSession() {
    absl::MutexLock session(&session_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (!agent_id_.empty()) return agent_id_;
    }
    Backoff backoff;
    for (;;) {
      if (Stopping()) return "";
      v1::RegisterAgentRequest req;
      req.set_node_id(options_.node_id);
      req.set_hostname(SanitizeUtf8(HostName()));
      req.set_ip(PrimaryIp());
      req.set_pid(::getpid());
      req.set_ships_logs(options_.ship_logs);
      v1::RegisterAgentResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(RpcDeadline(absl::Seconds(5)));
      grpc::Status s = stub_->RegisterAgent(&ctx, req, &resp);
      if (s.ok()) {
        absl::MutexLock lock(&mu_);
        agent_id_ = resp.agent_id();
        heartbeat_interval_ = absl::Milliseconds(std::max(100, resp.heartbeat_interval_ms()));
        spdlog::info("registered agent={} master={}", agent_id_, options_.master_address);
        return agent_id_;
      }
      spdlog::warn("cannot register with master={}: {}; retrying", options_.master_address,
                   s.error_message());
      SleepUnlessStopping(backoff.Next());
    }
  }

  // Tells the master this session ends, so that it does not wait for
  // agent_timeout to hand the node's work to others. Best effort.
  void Unregister() {
    const std::string agent_id = CurrentSession();
    if (agent_id.empty()) return;
    v1::UnregisterAgentRequest req;
    req.set_agent_id(agent_id);
    v1::UnregisterAgentResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(RpcDeadline(absl::Seconds(2)));
    if (stub_->UnregisterAgent(&ctx, req, &resp).ok()) {
      spdlog::info("unregistered agent={}", agent_id);
    }
  }

  // The master no longer knows this session (it restarted and we were
  // declared lost, or we were silent too long): its leases are void.
  void DropSession(const std::string& agent_id) {
    absl::MutexLock lock(&mu_);
    if (agent_id_ != agent_id) return;
    spdlog::warn("session agent={} is no longer known to the master; registering again", agent_id);
    agent_id_.clear();
    queue_.clear();
  }

  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  void SleepUnlessStopping(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), d);
  }

  // --- Heartbeats -----------------------------------------------------------
  void HeartbeatLoop() {
    for (;;) {
      absl::Duration interval;
      std::string job_id;
      int busy;
      std::vector<int64_t> held;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_ && reporter_done_) return;
        interval = heartbeat_interval_;
        job_id = job_ ? job_->job_id : "";
        busy = busy_;
        for (const auto& t : queue_) held.push_back(t.lease_id());
        held.insert(held.end(), running_.begin(), running_.end());
        for (const auto& r : results_) held.push_back(r.lease_id());
        held.insert(held.end(), reporting_.begin(), reporting_.end());
      }
      log_appender_.Retry();  // records a full disk or a lack of fds held back
      const std::string agent_id = EnsureSession();
      if (agent_id.empty()) {
        SleepUnlessStopping(interval);
        if (Stopping() && ReporterDone()) return;
        continue;
      }
      v1::HeartbeatRequest req;
      req.set_agent_id(agent_id);
      req.set_job_id(job_id);
      req.set_busy_workers(busy);
      for (int64_t id : held) req.add_held_lease_ids(id);
      v1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(RpcDeadline(interval * 2));
      grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        DropSession(agent_id);
      } else if (s.ok()) {
        for (const auto& stop : resp.stop_job_ids()) {
          if (stop == job_id) {
            spdlog::info("master says stop job={}", stop);
            StopJob(/*kill_running=*/true, stop);
          }
        }
      }
      // Sleep the interval, waking early only to exit.
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ && reporter_done_; };
      mu_.AwaitWithTimeout(absl::Condition(&done), interval);
      if (stopping_ && reporter_done_) return;
    }
  }

  bool ReporterDone() {
    absl::MutexLock lock(&mu_);
    return reporter_done_;
  }

  // --- Pulling --------------------------------------------------------------
  void PullLoop() {
    Backoff backoff;
    while (!Stopping()) {
      int want;
      {
        absl::MutexLock lock(&mu_);
        const int procs = job_ ? job_->spec.process_count_per_node() : 1;
        const int target = procs * (1 + options_.prefetch_per_worker);
        auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return stopping_ || static_cast<int>(queue_.size()) + busy_ < target;
        };
        mu_.Await(absl::Condition(&room));
        if (stopping_) break;
        want = target - static_cast<int>(queue_.size()) - busy_;
      }
      const std::string agent_id = EnsureSession();
      if (agent_id.empty()) break;
      v1::PullTasksRequest req;
      req.set_agent_id(agent_id);
      req.set_max_tasks(want);
      req.set_wait_ms(static_cast<int32_t>(absl::ToInt64Milliseconds(options_.pull_wait)));
      v1::PullTasksResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(RpcDeadline(options_.pull_wait + absl::Seconds(10)));
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
        pull_ctx_ = &ctx;
      }
      grpc::Status s = stub_->PullTasks(&ctx, req, &resp);
      bool stopping;
      {
        absl::MutexLock lock(&mu_);
        pull_ctx_ = nullptr;
        stopping = stopping_;
      }
      if (stopping) {
        // Leases we got while stopping go back at once.
        std::vector<v1::TaskResult> back;
        for (const auto& t : resp.tasks()) back.push_back(Released(t));
        PushResults(std::move(back));
        break;
      }
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        DropSession(agent_id);
        continue;
      }
      if (!s.ok()) {
        spdlog::warn("pull failed: {} ({}); retrying", s.error_message(),
                     static_cast<int>(s.error_code()));
        SleepUnlessStopping(backoff.Next());
        continue;
      }
      backoff.Reset();
      if (resp.tasks_size() == 0) {
        // No work for us: let idle workers of a finished job go.
        continue;
      }
      const std::string& job_id = resp.tasks(0).job_id();
      bool same_job;
      {
        absl::MutexLock lock(&mu_);
        same_job = job_ && job_->job_id == job_id && !job_->abort;
      }
      if (!same_job) {
        auto status = SwitchJob(agent_id, job_id);
        if (!status.ok()) {
          spdlog::error("cannot start job={}: {}", job_id, std::string(status.message()));
          std::vector<v1::TaskResult> released;
          for (const auto& t : resp.tasks()) {
            v1::TaskResult r;
            r.set_job_id(t.job_id());
            r.set_task_id(t.task_id());
            r.set_lease_id(t.lease_id());
            r.set_status(v1::INIT_FAILED);
            r.set_error(absl::StrCat("the agent cannot prepare the job: ", status.message()));
            released.push_back(std::move(r));
          }
          PushResults(std::move(released));
          if (options_.ship_logs) {
            // Whatever it wrote, and then `complete`: the master waits for it.
            absl::MutexLock lock(&mu_);
            ship_jobs_.emplace(job_id,
                               (fs::path(options_.work_dir) / "jobs" / job_id / "logs").string());
          }
          SleepUnlessStopping(backoff.Next());
          continue;
        }
      }
      std::vector<v1::TaskResult> back;
      {
        absl::MutexLock lock(&mu_);
        // The job may have been stopped (heartbeat) since we looked.
        const bool current = job_ && job_->job_id == job_id && !job_->abort;
        for (auto& t : *resp.mutable_tasks()) {
          if (current && t.job_id() == job_id) {
            queue_.push_back(std::move(t));
          } else {
            back.push_back(Released(t));
          }
        }
      }
      PushResults(std::move(back));
    }
  }

  // Ends the current job's workers and starts the new job's.
  absl::Status SwitchJob(const std::string& agent_id, const std::string& job_id) {
    StopJob(/*kill_running=*/false);
    v1::GetJobBundleRequest req;
    req.set_agent_id(agent_id);
    req.set_job_id(job_id);
    v1::GetJobBundleResponse bundle;
    grpc::ClientContext ctx;
    ctx.set_deadline(RpcDeadline(kRpcDeadline));
    grpc::Status s = stub_->GetJobBundle(&ctx, req, &bundle);
    if (!s.ok()) return FromGrpcStatus(s);

    auto job = std::make_shared<JobContext>();
    job->job_id = job_id;
    job->spec = bundle.spec();
    const fs::path root = fs::path(options_.work_dir) / "jobs" / job_id;
    job->code_dir = (root / "code").string();
    job->log_dir = (root / "logs").string();
    job->work_dir = (root / "work").string();
    if (auto st = UnpackSnapshot(bundle.snapshot(), job->code_dir); !st.ok()) return st;
    for (const char* sub : {"user/stdout", "user/stderr", "user/entry_script_log"}) {
      if (auto st = MakeDirs((fs::path(job->log_dir) / sub / options_.node_id).string());
          !st.ok()) {
        return st;
      }
    }
    const auto& env = job->spec.environment();
    job->python = !env.python().empty()      ? env.python()
                  : !options_.python.empty() ? options_.python
                                             : DefaultWorkerPython();
    job->arguments.assign(job->spec.arguments().begin(), job->spec.arguments().end());
    for (const auto& [k, v] : env.variables()) job->env[k] = v;
    const char* old_path = std::getenv("PYTHONPATH");
    job->env["PYTHONPATH"] =
        old_path && *old_path ? absl::StrCat(python_dir_, ":", old_path) : python_dir_;
    job->env["PYTHONUNBUFFERED"] = "1";
    job->env["PRS_ENTRY_SCRIPT"] = (fs::path(job->code_dir) / job->spec.entry_script()).string();
    job->env["PRS_SOURCE_DIR"] = job->code_dir;
    job->env["PRS_NODE_ID"] = options_.node_id;
    job->env["PRS_LOG_DIR"] = job->log_dir;
    // EntryScript().output_dir exists before any worker starts: the job's
    // output folder (the master made it; on a node that does not share it, it
    // is made here), or a folder of this node's for a summary_only job that
    // names none.
    const std::string output_dir =
        !job->spec.output().empty() ? job->spec.output() : (root / "output").string();
    if (auto st = MakeDirs(output_dir); !st.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the output folder ", output_dir, " cannot be made on node ", options_.node_id, ": ",
          st.message(), "; give an output folder every node can write"));
    }
    job->env["PRS_OUTPUT_DIR"] = output_dir;
    job->env["PRS_LOGGING_LEVEL"] = job->spec.logging_level();
    job->env["PRS_OUTPUT_ACTION"] = job->spec.output_action();
    job->env["PRS_INPUT_TYPE"] = IsTabular(job->spec) ? "tabular" : "file";
    if (job->spec.has_append_row_format()) {
      // Empty: ParallelRunStep's space-joined rows.
      job->env["PRS_APPEND_ROW_DELIMITER"] = job->spec.append_row_format().delimiter();
      job->env["PRS_APPEND_ROW_HEADER"] = job->spec.append_row_format().header() ? "1" : "0";
    }
    job->env["PRS_JOB_ID"] = job_id;
    {
      absl::MutexLock lock(&mu_);
      next_process_ = 0;  // process000... for each job, as in ParallelRunStep
    }
    const std::string& level = job->spec.logging_level();
    job->level = level == "DEBUG" ? kDebug : level == "WARNING" ? kWarning : kInfo;
    NodeLog(*job, "agent.txt", kInfo,
            absl::StrCat("job ", job_id, " started on node ", options_.node_id, " ip=", ip_, ": ",
                         job->spec.process_count_per_node(), " workers, python=", job->python,
                         gpu_count_ > 0 ? absl::StrCat(", ", gpu_count_, " GPUs") : ""));

    if (job->spec.resource_monitor_interval() > 0) {
      ResourceMonitorOptions mo;
      mo.out_dir = (fs::path(job->log_dir) / "perf" / options_.node_id).string();
      mo.interval = absl::Seconds(job->spec.resource_monitor_interval());
      JobContext* raw = job.get();
      mo.workers = [this, raw] {
        std::vector<std::pair<pid_t, std::string>> out;
        absl::MutexLock lock(&mu_);
        for (const auto& [name, pid] : raw->worker_pids) out.emplace_back(pid, name);
        return out;
      };
      auto monitor = ResourceMonitor::Start(std::move(mo));
      if (monitor.ok()) {
        job->monitor = *std::move(monitor);
      } else {
        spdlog::warn("resource monitor off for job={}: {}", job_id,
                     std::string(monitor.status().message()));
      }
    }
    // A node that cannot start as many worker threads as asked runs with
    // those it could start; one that can start none fails the job's tasks
    // here with the reason, and never aborts.
    std::vector<std::thread> slots;
    const int wanted = std::max(1, job->spec.process_count_per_node());
    std::string thread_error;
    for (int i = 0; i < wanted; ++i) {
      try {
        slots.emplace_back([this, job] { SlotLoop(job); });
      } catch (const std::system_error& e) {
        thread_error = e.what();
        break;
      }
    }
    if (slots.empty()) {
      if (job->monitor) job->monitor->Stop();
      return absl::ResourceExhaustedError(
          absl::StrCat("node ", options_.node_id, " cannot start a thread for any of its ", wanted,
                       " workers (", thread_error,
                       "); lower process_count_per_node or raise the node's "
                       "process limit (ulimit -u)"));
    }
    if (static_cast<int>(slots.size()) < wanted) {
      NodeLog(*job, "agent.txt", kWarning,
              absl::StrCat("only ", slots.size(), " of the ", wanted,
                           " workers can run on this node: starting another thread failed (",
                           thread_error,
                           "); lower process_count_per_node or raise the node's "
                           "process limit (ulimit -u)"));
    }
    {
      absl::MutexLock lock(&mu_);
      job_ = job;
      slots_ = std::move(slots);
      if (options_.ship_logs) ship_jobs_[job_id] = job->log_dir;
    }
    spdlog::info("started job={} workers={} python={}", job_id, job->spec.process_count_per_node(),
                 job->python);
    return absl::OkStatus();
  }

  // Stops the current job: drops queued mini-batches, ends its workers
  // (killing running ones when asked), joins its slots.
  // Queued mini-batches are reported RELEASED so the master leases them again
  // at once (it rejects them if the leases are already void). With `job_id`,
  // only that job is stopped.
  void StopJob(bool kill_running, const std::string& job_id = "") {
    std::vector<std::thread> slots;
    std::shared_ptr<JobContext> job;
    std::vector<v1::TaskResult> released;
    {
      absl::MutexLock lock(&mu_);
      // A job the master ended has its running attempts killed now, also
      // when another stop of it (the agent's own, which lets them finish)
      // is under way.
      if (kill_running) {
        for (const auto& j : {job_, closing_}) {
          if (j && (job_id.empty() || j->job_id == job_id)) j->abort = true;
        }
      }
      // One stop at a time: a second caller waits for the first to finish,
      // so the next job never starts beside the last one's workers.
      auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closing_ == nullptr; };
      mu_.Await(absl::Condition(&idle));
      if (!job_id.empty() && (!job_ || job_->job_id != job_id)) return;
      if (!job_) {
        for (const auto& t : queue_) released.push_back(Released(t));
        queue_.clear();
      }
    }
    if (!released.empty()) PushResults(std::move(released));
    {
      absl::MutexLock lock(&mu_);
      if (!job_ || (!job_id.empty() && job_->job_id != job_id)) return;
      job = job_;
      if (kill_running) job->abort = true;
      for (const auto& t : queue_) released.push_back(Released(t));
      queue_.clear();
      closing_ = job;
      slots.swap(slots_);
    }
    PushResults(std::move(released));
    for (auto& t : slots) t.join();
    if (job->monitor) job->monitor->Stop();
    NodeLog(*job, "agent.txt", kInfo, absl::StrCat("job ", job->job_id, " stopped on this node"));
    absl::MutexLock lock(&mu_);
    if (job_ == job) job_.reset();
    if (closing_ == job) closing_.reset();
    ship_now_ = true;
  }

  static v1::TaskResult Released(const v1::Task& t) {
    v1::TaskResult r;
    r.set_job_id(t.job_id());
    r.set_task_id(t.task_id());
    r.set_lease_id(t.lease_id());
    r.set_status(v1::RELEASED);
    r.set_error("given back unrun by the agent");
    return r;
  }

  // --- Worker slots ---------------------------------------------------------
  std::optional<v1::Task> PopTask(const std::shared_ptr<JobContext>& job) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || closing_ == job || job->abort || !queue_.empty();
    };
    mu_.Await(absl::Condition(&ready));
    if (queue_.empty() || job->abort || queue_.front().job_id() != job->job_id) {
      return std::nullopt;
    }
    v1::Task t = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    running_.insert(t.lease_id());
    return t;
  }

  // The worker a slot runs, and what it holds.
  struct SlotWorker {
    std::unique_ptr<WorkerProcess> proc;
    std::string name;  // process000, process001, ...
    int gpu = -1;      // index in CUDA_VISIBLE_DEVICES, -1 for none
  };

  void SlotLoop(std::shared_ptr<JobContext> job) {
    SlotWorker w;
    while (auto task = PopTask(job)) {
      v1::TaskResult r = RunTask(*job, *task, w);
      if (!r.error().empty() && r.status() != v1::RELEASED) WriteError(*job, *task, r);
      absl::MutexLock lock(&mu_);
      running_.erase(r.lease_id());
      results_.push_back(std::move(r));
      --busy_;
    }
    // A worker left here is idle (an aborted attempt kills its worker): let
    // it run shutdown().
    if (w.proc) RetireWorker(*job, w, /*kill=*/false);
  }

  // Ends a slot's worker (shutdown() first unless `kill`), records how it
  // ended in agent.txt, and gives back its GPU.
  void RetireWorker(JobContext& job, SlotWorker& w, bool kill) {
    if (kill) {
      w.proc->Kill(kKillGrace);
    } else {
      w.proc->Shutdown(kShutdownGrace);
    }
    NodeLog(job, "agent.txt", kInfo,
            absl::StrCat("worker ", w.name, " pid=", w.proc->pid(),
                         " ended: ", w.proc->exit_description()));
    {
      absl::MutexLock lock(&mu_);
      job.worker_pids.erase(w.name);
      if (w.gpu >= 0) free_gpus_.insert(w.gpu);
    }
    w.proc.reset();
    w.gpu = -1;
  }

  // Appends a line to the job's sys/node/<node>/<file>, when `level` is at
  // least the job's logging_level.
  enum Level { kDebug = 0, kInfo = 1, kWarning = 2 };
  void NodeLog(const JobContext& job, const std::string& file, Level level,
               const std::string& message) {
    if (level < job.level) return;
    static const char* kNames[] = {"DEBUG", "INFO", "WARNING"};
    const std::string line =
        absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::UTCTimeZone()), "|",
                     kNames[level], "|", ::getpid(), "|", message, "\n");
    const std::string path =
        (fs::path(job.log_dir) / "sys/node" / options_.node_id / file).string();
    if (!log_appender_.Append(path, line)) {
      spdlog::warn("cannot write {} now; the record is kept and written later", path);
    }
  }

  // Appends the attempt's error, its inputs and its traceback to
  // user/error/<node>/<process>.txt.
  void WriteError(const JobContext& job, const v1::Task& task, const v1::TaskResult& r) {
    const std::string process = r.process_name().empty() ? "agent" : r.process_name();
    const std::string path =
        (fs::path(job.log_dir) / "user/error" / options_.node_id / (process + ".txt")).string();
    std::string text = absl::StrCat(
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::UTCTimeZone()), " UTC mini-batch ",
        r.task_id(), " ", v1::AttemptStatus_Name(r.status()), ": ", r.error(), "\ninputs:\n");
    // Every input, so that a failed one can be found (mini_batch_size bounds them).
    for (const auto& item : task.items()) absl::StrAppend(&text, "  ", DescribeItem(item), "\n");
    absl::StrAppend(&text, r.error_detail(),
                    r.error_detail().empty() || r.error_detail().back() == '\n' ? "" : "\n", "\n");
    if (!log_appender_.Append(path, text)) {
      spdlog::warn("cannot write {} now; the record is kept and written later", path);
    }
  }

  v1::TaskResult RunTask(JobContext& job, const v1::Task& task, SlotWorker& w) {
    v1::TaskResult r;
    r.set_job_id(task.job_id());
    r.set_task_id(task.task_id());
    r.set_lease_id(task.lease_id());
    r.set_items_total(task.items_size());
    const absl::Time start = absl::Now();
    r.set_start_time_ms(absl::ToUnixMillis(start));
    auto finish = [&](v1::AttemptStatus status, std::string error, std::string detail = "") {
      r.set_status(status);
      r.set_error(std::move(error));
      r.set_error_detail(std::move(detail));
      r.set_elapsed_seconds(absl::ToDoubleSeconds(absl::Now() - start));
      if (!r.process_name().empty() && status != v1::RELEASED) {
        NodeLog(job, r.process_name() + ".txt", kInfo,
                absl::StrFormat("mini-batch %d completed: status=%s ip=%s pid=%d items_total=%d "
                                "items_succeeded=%d items_failed=%d start=%s duration=%.3fs "
                                "process_time=%.3fs run_time=%.3fs%s%s",
                                r.task_id(), v1::AttemptStatus_Name(status), ip_, r.pid(),
                                r.items_total(), r.items_succeeded(),
                                r.items_total() - r.items_succeeded(),
                                absl::FormatTime("%Y-%m-%d %H:%M:%E3S", start, absl::UTCTimeZone()),
                                r.elapsed_seconds(), r.cpu_seconds(), r.run_seconds(),
                                r.error().empty() ? "" : " error=", r.error()));
      }
      return r;
    };
    const auto abort = [&job] { return job.abort.load(); };
    const int64_t timeout_s = std::max<int64_t>(1, job.spec.run_invocation_timeout());

    if (!w.proc) {
      {
        // Process numbers and GPUs are handed out together, so lower process
        // numbers get lower GPU indices; a replacement takes a released one.
        absl::MutexLock lock(&mu_);
        w.name = absl::StrFormat("process%03d", next_process_++);
        if (!free_gpus_.empty()) {
          w.gpu = *free_gpus_.begin();
          free_gpus_.erase(free_gpus_.begin());
        }
      }
      r.set_process_name(w.name);
      auto started = StartWorker(job, w, timeout_s, abort);
      if (!started.ok() || !started->ready) {
        if (w.proc) RetireWorker(job, w, /*kill=*/true);
        absl::MutexLock lock(&mu_);
        if (w.gpu >= 0) free_gpus_.insert(w.gpu);
        w.gpu = -1;
      }
      if (!started.ok()) {
        return finish(started.status().code() == absl::StatusCode::kCancelled ? v1::RELEASED
                                                                              : v1::INIT_FAILED,
                      std::string(started.status().message()));
      }
      if (!started->ready) {
        return finish(started->load_failed ? v1::LOAD_FAILED : v1::INIT_FAILED, started->error,
                      started->detail);
      }
    }
    r.set_process_name(w.name);
    r.set_pid(w.proc->pid());
    NodeLog(job, w.name + ".txt", kInfo,
            absl::StrCat("mini-batch ", task.task_id(), " picked: try ", task.attempt(), ", ",
                         task.items_size(), " items, pid=", w.proc->pid()));
    std::vector<std::string> items(task.items().begin(), task.items().end());
    if (auto s = w.proc->SendRun(task.task_id(), items); !s.ok()) {
      w.proc->Kill(kKillGrace);
      std::string why =
          absl::StrCat("the worker process died before run() (", w.proc->exit_description(), ")");
      RetireWorker(job, w, /*kill=*/true);
      return finish(v1::WORKER_DIED, why);
    }
    auto result = w.proc->WaitResult(absl::Seconds(timeout_s), abort);
    if (!result.ok()) {
      const auto code = result.status().code();
      if (code == absl::StatusCode::kDeadlineExceeded) {
        w.proc->DumpStacks(absl::Milliseconds(300));
        RetireWorker(job, w, /*kill=*/true);
        return finish(
            v1::RUN_TIMEOUT,
            absl::StrCat("run() did not return within run_invocation_timeout (", timeout_s,
                         " s); the worker was killed and will be replaced; its Python "
                         "stack at the timeout is in its stderr file"));
      }
      if (code == absl::StatusCode::kCancelled) {
        RetireWorker(job, w, /*kill=*/true);
        return finish(v1::RELEASED, "the job was stopped");
      }
      w.proc->Kill(kKillGrace);
      const StderrTail tail = ReadStderrTail(StderrPath(job, w.name));
      std::string why =
          absl::StrCat("the worker process died during run() (", w.proc->exit_description(), ")",
                       tail.last_line.empty() ? "" : absl::StrCat(": ", tail.last_line));
      RetireWorker(job, w, /*kill=*/true);
      return finish(v1::WORKER_DIED, why, tail.lines);
    }
    r.set_items_succeeded(result->items_succeeded);
    if (result->items) r.set_items_total(*result->items);
    r.set_header(std::move(result->header));
    r.set_row_count(result->row_count);
    r.set_rows(std::move(result->rows));
    r.set_run_seconds(result->run_seconds);
    r.set_cpu_seconds(result->cpu_seconds);
    if (!result->ok) return finish(v1::RUN_EXCEPTION, result->error, result->detail);
    if (r.items_total() > 0 && r.items_succeeded() < r.items_total()) {
      // Which inputs failed is the script's to know; the report lists them all.
      return finish(
          v1::RUN_DONE,
          "run() returned fewer elements than inputs; the inputs left over count as "
          "failed items",
          absl::StrCat("run() returned ", r.items_succeeded(),
                       r.items_succeeded() == 1 ? " element" : " elements", " for ",
                       r.items_total(), " inputs: ", r.items_total() - r.items_succeeded(),
                       r.items_total() - r.items_succeeded() == 1 ? " item" : " items",
                       " failed. Each returned element marks one input as succeeded; which "
                       "inputs failed only the script can say (log them with "
                       "EntryScript().logger). The mini-batch's inputs are listed above.\n"));
    }
    return finish(v1::RUN_DONE, "");
  }

  std::string StderrPath(const JobContext& job, const std::string& process) const {
    return (fs::path(job.log_dir) / "user/stderr" / options_.node_id / (process + ".stderr.txt"))
        .string();
  }

  // The last lines a worker wrote to its stderr, for the reason of its end.
  struct StderrTail {
    std::string lines;      // up to the last 20 lines
    std::string last_line;  // the last line that is not blank, on one line
  };
  static StderrTail ReadStderrTail(const std::string& path) {
    constexpr int64_t kTailBytes = 8 << 10;
    StderrTail tail;
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return tail;
    const int64_t size = in.tellg();
    const int64_t start = std::max<int64_t>(0, size - kTailBytes);
    in.seekg(start);
    std::string text(static_cast<size_t>(size - start), '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
    if (start > 0 && !lines.empty()) lines.erase(lines.begin());  // a cut line
    while (!lines.empty() && absl::StripAsciiWhitespace(lines.back()).empty()) lines.pop_back();
    if (lines.empty()) return tail;
    tail.last_line = Printable(absl::StripAsciiWhitespace(lines.back()), 500);
    const size_t first = lines.size() > 20 ? lines.size() - 20 : 0;
    for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&tail.lines, lines[i], "\n");
    tail.lines = SanitizeUtf8(tail.lines);
    return tail;
  }

  // Spawns the slot's worker and waits for init(). On success w.proc is set.
  absl::StatusOr<WorkerStart> StartWorker(JobContext& job, SlotWorker& w, int64_t timeout_s,
                                          const std::function<bool()>& abort) {
    WorkerSpawnOptions o;
    o.python = job.python;
    o.arguments = job.arguments;
    o.env = job.env;
    o.env["PRS_PROCESS_NAME"] = w.name;
    if (gpu_count_ > 0) {
      // Workers beyond the GPU count see none.
      o.env["CUDA_VISIBLE_DEVICES"] = w.gpu >= 0 ? std::to_string(w.gpu) : "";
    }
    const fs::path logs(job.log_dir);
    o.env["PRS_ENTRY_SCRIPT_LOG"] =
        (logs / "user/entry_script_log" / options_.node_id / (w.name + ".log.txt")).string();
    const std::string work = (fs::path(job.work_dir) / w.name).string();
    if (auto s = MakeDirs(work); !s.ok()) return s;
    o.env["PRS_WORKING_DIR"] = work;
    o.cwd = job.code_dir;
    o.stdout_path = (logs / "user/stdout" / options_.node_id / (w.name + ".stdout.txt")).string();
    o.stderr_path = StderrPath(job, w.name);
    if (o.python.find('/') != std::string::npos && ::access(o.python.c_str(), X_OK) != 0) {
      WorkerStart failed;
      failed.load_failed = true;
      failed.error = absl::StrCat(
          "the worker interpreter ", o.python, " cannot be executed on node ", options_.node_id,
          ": ", std::strerror(errno), "; set environment.python to an interpreter every node has");
      return failed;
    }
    auto spawned = WorkerProcess::Spawn(o);
    if (!spawned.ok()) return spawned.status();
    w.proc = *std::move(spawned);
    {
      absl::MutexLock lock(&mu_);
      job.worker_pids[w.name] = w.proc->pid();
    }
    NodeLog(job, "agent.txt", kInfo,
            absl::StrCat("worker ", w.name, " started pid=", w.proc->pid(),
                         gpu_count_ > 0
                             ? absl::StrCat(" CUDA_VISIBLE_DEVICES=", o.env["CUDA_VISIBLE_DEVICES"])
                             : ""));
    // As ParallelRunStep: init() may take up to 3 x run_invocation_timeout + 30 s.
    auto start = w.proc->WaitReady(absl::Seconds(3 * timeout_s + 30), abort);
    if (!start.ok()) {
      w.proc->Kill(kKillGrace);
      if (start.status().code() == absl::StatusCode::kCancelled) {
        return absl::CancelledError("the job was stopped while the worker started");
      }
      WorkerStart failed;
      if (start.status().code() == absl::StatusCode::kDeadlineExceeded) {
        failed.error = absl::StrCat("init() did not finish within ", 3 * timeout_s + 30,
                                    " s (3 x run_invocation_timeout + 30)");
      } else {
        // Why it ended is in the last lines it wrote (an interpreter that
        // cannot start, an import that crashed the process).
        const StderrTail tail = ReadStderrTail(StderrPath(job, w.name));
        failed.error =
            absl::StrCat("the worker exited before init() finished (", w.proc->exit_description(),
                         ")", tail.last_line.empty() ? "" : absl::StrCat(": ", tail.last_line),
                         "; see logs/user/stderr/", options_.node_id, "/", w.name, ".stderr.txt");
        failed.detail = tail.lines;
        // An interpreter that cannot start is as final as a script that cannot load.
        failed.load_failed = w.proc->exit_description() == "exit code 127";
      }
      return failed;
    }
    if (!start->ready) {
      spdlog::warn("worker {} failed to start: {}", w.name, start->error);
      NodeLog(job, "agent.txt", kWarning,
              absl::StrCat("worker ", w.name, " failed to start: ", start->error));
      return *start;
    }
    spdlog::info("worker {} ready pid={} job={}", w.name, w.proc->pid(), job.job_id);
    NodeLog(job, "agent.txt", kDebug, absl::StrCat("worker ", w.name, " ready: init() returned"));
    return *start;
  }

  // --- Log shipping ---------------------------------------------------------
  // Every second, sends what grew in the log trees of this agent's jobs to the
  // master, in requests of at most kShipBatchBytes: memory stays bounded
  // whatever the files' sizes. The master answers with its size of each file,
  // so a reconnect (or a master restart) resumes at the right offset.
  static constexpr int64_t kShipChunkBytes = 256 << 10;
  static constexpr int64_t kShipBatchBytes = 1 << 20;

  struct ShippedFile {
    int64_t offset = 0;  // bytes the master has
    ino_t inode = 0;     // a new inode means the file was rewritten
  };

  void ShipLoop() {
    if (!options_.ship_logs) return;
    for (;;) {
      bool last;
      {
        absl::MutexLock lock(&mu_);
        // A stopped job is shipped at once: the master publishes its end
        // when its log tree is complete.
        auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return (stopping_ && reporter_done_) || ship_now_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&wake), absl::Seconds(1));
        last = stopping_ && reporter_done_;
        ship_now_ = false;
      }
      ShipOnce(last);
      if (last) return;
    }
  }

  void ShipOnce(bool last) {
    log_appender_.Retry();
    std::map<std::string, std::string> jobs;
    std::string current;
    {
      absl::MutexLock lock(&mu_);
      jobs = ship_jobs_;
      current = job_ ? job_->job_id : "";
    }
    for (const auto& [job_id, log_dir] : jobs) {
      bool idle = ShipJob(job_id, log_dir, last);
      if (job_id == current && !last) continue;
      // A job this agent no longer runs: ship what is left, say that its logs
      // are complete, and drop it.
      for (int round = 0; !idle && round < 8; ++round) idle = ShipJob(job_id, log_dir, last);
      if (idle && SendLogsComplete(job_id, last)) {
        absl::MutexLock lock(&mu_);
        ship_jobs_.erase(job_id);
        shipped_.erase(job_id);
      }
    }
  }

  // ShipLogs with no pieces and `complete`: this agent's part of the job's
  // log tree is all on the master.
  bool SendLogsComplete(const std::string& job_id, bool last) {
    const std::string agent_id = last ? CurrentSession() : EnsureSession();
    if (agent_id.empty()) return false;
    v1::ShipLogsRequest req;
    req.set_agent_id(agent_id);
    req.set_job_id(job_id);
    req.set_complete(true);
    v1::ShipLogsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(RpcDeadline(kRpcDeadline));
    grpc::Status s = stub_->ShipLogs(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) DropSession(agent_id);
    // An unknown job (a new state dir) has nothing to wait for.
    return s.ok() || s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
  }

  // Ships one job's changed files; true when there was nothing left to send.
  bool ShipJob(const std::string& job_id, const std::string& log_dir, bool last) {
    auto& files = shipped_[job_id];
    std::vector<v1::LogChunk> batch;
    int64_t batch_bytes = 0;
    bool sent_any = false;
    auto flush = [&]() -> bool {
      if (batch.empty()) return true;
      const std::string agent_id = last ? CurrentSession() : EnsureSession();
      if (agent_id.empty()) return false;
      v1::ShipLogsRequest req;
      req.set_agent_id(agent_id);
      req.set_job_id(job_id);
      for (auto& c : batch) *req.add_chunks() = std::move(c);
      v1::ShipLogsResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(RpcDeadline(kRpcDeadline));
      grpc::Status s = stub_->ShipLogs(&ctx, req, &resp);
      batch.clear();
      batch_bytes = 0;
      if (!s.ok()) {
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) DropSession(agent_id);
        if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          // The master does not know the job (a new state dir): nothing to ship to.
          spdlog::warn("not shipping logs of job={}: {}", job_id, s.error_message());
          absl::MutexLock lock(&mu_);
          ship_jobs_.erase(job_id);
          return false;
        }
        spdlog::warn("shipping logs of job={} failed: {}", job_id, s.error_message());
        return false;
      }
      for (int i = 0; i < req.chunks_size() && i < resp.sizes_size(); ++i) {
        files[req.chunks(i).path()].offset = resp.sizes(i);
      }
      sent_any = true;
      return true;
    };
    std::error_code ec;
    for (fs::recursive_directory_iterator it(log_dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      const std::string rel = fs::relative(it->path(), log_dir, fec).string();
      if (rel.rfind("user/", 0) != 0 && rel.rfind("sys/node/", 0) != 0 &&
          rel.rfind("perf/", 0) != 0) {
        continue;
      }
      struct stat st;
      if (::stat(it->path().c_str(), &st) != 0) continue;
      ShippedFile& f = files[rel];
      const bool rewritten = (f.inode != 0 && f.inode != st.st_ino) || st.st_size < f.offset;
      f.inode = st.st_ino;
      if (!rewritten && st.st_size == f.offset) continue;
      std::ifstream in(it->path(), std::ios::binary);
      if (!in) continue;
      int64_t offset = rewritten ? 0 : f.offset;
      in.seekg(offset);
      // A rewritten file is sent whole (such files are small listings).
      const int64_t limit =
          rewritten ? st.st_size : std::min<int64_t>(st.st_size, offset + kShipBatchBytes);
      while (offset < limit) {
        const int64_t n = rewritten ? limit : std::min<int64_t>(kShipChunkBytes, limit - offset);
        v1::LogChunk c;
        c.set_path(rel);
        c.set_offset(offset);
        c.set_replace(rewritten);
        std::string data(static_cast<size_t>(n), '\0');
        in.read(data.data(), n);
        data.resize(static_cast<size_t>(in.gcount()));
        if (data.empty()) break;
        offset += static_cast<int64_t>(data.size());
        batch_bytes += static_cast<int64_t>(data.size());
        c.set_data(std::move(data));
        batch.push_back(std::move(c));
        if (batch_bytes >= kShipBatchBytes && !flush()) return false;
        if (rewritten) break;
      }
    }
    if (!flush()) return false;
    return !sent_any;
  }

  std::string CurrentSession() {
    absl::MutexLock lock(&mu_);
    return agent_id_;
  }

  // --- Reporting ------------------------------------------------------------
  void PushResults(std::vector<v1::TaskResult> results) {
    absl::MutexLock lock(&mu_);
    for (auto& r : results) results_.push_back(std::move(r));
  }

  void ReporterLoop() {
    for (;;) {
      std::vector<v1::TaskResult> batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return reporter_done_ || !results_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (results_.empty()) return;  // done and drained
        while (!results_.empty() && static_cast<int>(batch.size()) < kReportBatch) {
          reporting_.push_back(results_.front().lease_id());
          batch.push_back(std::move(results_.front()));
          results_.pop_front();
        }
      }
      ReportBatch(batch);
      absl::MutexLock lock(&mu_);
      reporting_.clear();
    }
  }

  // Sends one batch until the master acknowledges it, the session is gone, or
  // the agent stops.
  void ReportBatch(std::vector<v1::TaskResult>& batch) {
    Backoff backoff;
    int tries_while_stopping = 0;
    {
      for (;;) {
        const std::string agent_id = EnsureSession();
        if (agent_id.empty()) return;
        v1::ReportResultsRequest req;
        req.set_agent_id(agent_id);
        for (auto& r : batch) {
          v1::TaskResult* out = req.add_results();
          *out = r;
          // A script's error may quote a path that is not UTF-8, which a
          // protobuf string cannot carry: it is shown as \xNN instead.
          out->set_error(SanitizeUtf8(r.error()));
          out->set_error_detail(SanitizeUtf8(r.error_detail()));
        }
        v1::ReportResultsResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(RpcDeadline(kRpcDeadline));
        grpc::Status s = stub_->ReportResults(&ctx, req, &resp);
        if (s.ok()) {
          backoff.Reset();
          for (int i = 0; i < resp.accepted_size(); ++i) {
            if (!resp.accepted(i)) {
              // Expected after a job ends or a lease is given to another
              // agent: not a problem of this node.
              spdlog::info(
                  "result of mini-batch {} of job {} not taken: the master no longer holds its "
                  "lease (the job ended, or the mini-batch went to another agent)",
                  batch[i].task_id(), batch[i].job_id());
            }
          }
          break;
        }
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
          // The session's leases are void: these results would be rejected.
          DropSession(agent_id);
          break;
        }
        if (Stopping()) {
          // A few more tries at shutdown, then give up: the master leases the
          // mini-batches again once this session is declared lost.
          if (++tries_while_stopping > kReportTriesWhileStopping) {
            spdlog::warn("giving up reporting {} results: {}", batch.size(), s.error_message());
            return;
          }
          spdlog::warn("report failed: {}; retrying before exit", s.error_message());
          absl::SleepFor(backoff.Next());  // stopping: no wake-up to wait for
          continue;
        }
        spdlog::warn("report failed: {}; retrying", s.error_message());
        SleepUnlessStopping(backoff.Next());
      }
    }
  }

  const AgentOptions options_;
  const std::string python_dir_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  int gpu_count_ = 0;
  std::string ip_;
  LogAppender log_appender_;
  absl::Mutex session_mu_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int next_process_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<int> free_gpus_ ABSL_GUARDED_BY(mu_);
  bool reporter_done_ ABSL_GUARDED_BY(mu_) = false;
  bool ship_now_ ABSL_GUARDED_BY(mu_) = false;  // a job stopped: ship its logs now
  std::string agent_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  std::shared_ptr<JobContext> job_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<JobContext> closing_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Task> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> ship_jobs_ ABSL_GUARDED_BY(mu_);  // job id -> log dir
  std::map<std::string, std::map<std::string, ShippedFile>> shipped_;  // shipper thread only
  std::set<int64_t> running_ ABSL_GUARDED_BY(mu_);                     // leases being run
  std::vector<int64_t> reporting_ ABSL_GUARDED_BY(mu_);                // leases being reported
  grpc::ClientContext* pull_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

namespace {

// GPUs that `nvidia-smi -L` lists; 0 without the tool.
int DetectGpus() {
  FILE* p = ::popen("nvidia-smi -L 2>/dev/null", "r");
  if (p == nullptr) return 0;
  int n = 0;
  char line[512];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    if (std::strncmp(line, "GPU ", 4) == 0) ++n;
  }
  ::pclose(p);
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  AgentOptions o = options;
  if (o.gpus < 0) o.gpus = DetectGpus();
  if (o.master_address.empty()) return absl::InvalidArgumentError("--master is required");
  if (o.node_id.empty()) o.node_id = HostName();
  if (o.node_id.find('/') != std::string::npos || o.node_id == "." || o.node_id == ".." ||
      !IsValidUtf8(o.node_id) || Printable(o.node_id) != o.node_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-id '", Printable(o.node_id),
        "' must be printable UTF-8 text without '/'; it names log folders, e.g. node-a"));
  }
  // Workers run in the job's code folder: every path handed to them is
  // absolute, whatever folder the agent was started from.
  std::error_code ec;
  o.work_dir = fs::absolute(o.work_dir, ec).lexically_normal().string();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--work-dir: ", ec.message()));
  if (auto s = MakeDirs(o.work_dir); !s.ok()) return s;
  auto python_dir = FindPythonRuntimeDir();
  if (!python_dir.ok()) return absl::FailedPreconditionError(python_dir.status().message());
  return std::unique_ptr<Agent>(new Agent(std::make_unique<Impl>(o, *python_dir)));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;
void Agent::Run() { impl_->Run(); }
void Agent::Stop() { impl_->Stop(); }

}  // namespace prs::agent

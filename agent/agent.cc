#include "agent/agent.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/worker_process.h"
#include "common/paths.h"
#include "common/snapshot.h"
#include "common/status_grpc.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {
namespace fs = std::filesystem;

constexpr int kMaxMessageBytes = 512 << 20;
constexpr int kReportBatch = 64;
constexpr int kReportTriesWhileStopping = 3;
constexpr absl::Duration kRpcDeadline = absl::Seconds(30);
constexpr absl::Duration kShutdownGrace = absl::Seconds(10);
constexpr absl::Duration kKillGrace = absl::Seconds(3);

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

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
  std::atomic<bool> abort{false};  // kill running attempts (cancel, stop)
};

}  // namespace

class Agent::Impl {
 public:
  explicit Impl(const AgentOptions& options, std::string python_dir)
      : options_(options), python_dir_(std::move(python_dir)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // Reconnect quickly after a master restart.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    auto channel =
        grpc::CreateCustomChannel(options.master_address, grpc::InsecureChannelCredentials(), args);
    stub_ = v1::AgentService::NewStub(channel);
  }

  void Run() {
    std::thread heartbeat([this] { HeartbeatLoop(); });
    std::thread reporter([this] { ReporterLoop(); });
    PullLoop();
    StopJob(/*kill_running=*/false);
    {
      absl::MutexLock lock(&mu_);
      reporter_done_ = true;
    }
    heartbeat.join();
    reporter.join();
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
      req.set_hostname(HostName());
      req.set_ip(PrimaryIp());
      req.set_pid(::getpid());
      v1::RegisterAgentResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(absl::Seconds(5)));
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
      ctx.set_deadline(Deadline(interval * 2));
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
      ctx.set_deadline(Deadline(options_.pull_wait + absl::Seconds(10)));
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
    ctx.set_deadline(Deadline(kRpcDeadline));
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
    job->env["PRS_OUTPUT_DIR"] = job->spec.output();
    job->env["PRS_LOGGING_LEVEL"] = job->spec.logging_level();
    job->env["PRS_OUTPUT_ACTION"] = job->spec.output_action();
    job->env["PRS_JOB_ID"] = job_id;

    std::vector<std::thread> slots;
    for (int i = 0; i < std::max(1, job->spec.process_count_per_node()); ++i) {
      slots.emplace_back([this, job] { SlotLoop(job); });
    }
    {
      absl::MutexLock lock(&mu_);
      job_ = job;
      slots_ = std::move(slots);
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
    absl::MutexLock lock(&mu_);
    if (job_ == job) job_.reset();
    if (closing_ == job) closing_.reset();
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

  void SlotLoop(std::shared_ptr<JobContext> job) {
    std::unique_ptr<WorkerProcess> worker;
    std::string process_name;
    while (auto task = PopTask(job)) {
      v1::TaskResult r = RunTask(*job, *task, worker, process_name);
      if (!r.error().empty() && r.status() != v1::RELEASED) WriteError(*job, r);
      absl::MutexLock lock(&mu_);
      running_.erase(r.lease_id());
      results_.push_back(std::move(r));
      --busy_;
    }
    // A worker left here is idle (an aborted attempt kills its worker): let
    // it run shutdown().
    if (worker) worker->Shutdown(kShutdownGrace);
  }

  // Appends the attempt's error and traceback to user/error/<node>/<process>.txt.
  void WriteError(const JobContext& job, const v1::TaskResult& r) {
    const std::string process = r.process_name().empty() ? "agent" : r.process_name();
    const std::string path =
        (fs::path(job.log_dir) / "user/error" / options_.node_id / (process + ".txt")).string();
    const std::string text =
        absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::UTCTimeZone()),
                     " mini-batch ", r.task_id(), " ", v1::AttemptStatus_Name(r.status()), ": ",
                     r.error(), "\n", r.error_detail(),
                     r.error_detail().empty() || r.error_detail().back() == '\n' ? "" : "\n", "\n");
    if (auto s = AppendToFile(path, text); !s.ok()) {
      spdlog::warn("cannot write {}: {}", path, std::string(s.message()));
    }
  }

  v1::TaskResult RunTask(JobContext& job, const v1::Task& task,
                         std::unique_ptr<WorkerProcess>& worker, std::string& process_name) {
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
      return r;
    };
    const auto abort = [&job] { return job.abort.load(); };
    const int timeout_s = std::max(1, job.spec.run_invocation_timeout());

    if (!worker) {
      process_name = absl::StrFormat("process%03d", next_process_.fetch_add(1));
      r.set_process_name(process_name);
      auto started = StartWorker(job, process_name, timeout_s, abort);
      if (!started.ok()) {
        return finish(started.status().code() == absl::StatusCode::kCancelled ? v1::RELEASED
                                                                              : v1::INIT_FAILED,
                      std::string(started.status().message()));
      }
      if (!started->second.ready) {
        const auto& st = started->second;
        return finish(st.load_failed ? v1::LOAD_FAILED : v1::INIT_FAILED, st.error, st.detail);
      }
      worker = std::move(started->first);
    }
    r.set_process_name(process_name);
    r.set_pid(worker->pid());
    std::vector<std::string> items(task.items().begin(), task.items().end());
    if (auto s = worker->SendRun(task.task_id(), items); !s.ok()) {
      worker->Kill(kKillGrace);
      std::string why =
          absl::StrCat("the worker process died before run() (", worker->exit_description(), ")");
      worker.reset();
      return finish(v1::WORKER_DIED, why);
    }
    auto result = worker->WaitResult(absl::Seconds(timeout_s), abort);
    if (!result.ok()) {
      const auto code = result.status().code();
      if (code == absl::StatusCode::kDeadlineExceeded) {
        worker->DumpStacks(absl::Milliseconds(300));
        worker->Kill(kKillGrace);
        worker.reset();
        return finish(
            v1::RUN_TIMEOUT,
            absl::StrCat("run() did not return within run_invocation_timeout (", timeout_s,
                         " s); the worker was killed and will be replaced; its Python "
                         "stack at the timeout is in its stderr file"));
      }
      if (code == absl::StatusCode::kCancelled) {
        worker->Kill(kKillGrace);
        worker.reset();
        return finish(v1::RELEASED, "the job was stopped");
      }
      worker->Kill(kKillGrace);
      std::string why =
          absl::StrCat("the worker process died during run() (", worker->exit_description(), ")");
      worker.reset();
      return finish(v1::WORKER_DIED, why);
    }
    r.set_items_succeeded(result->items_succeeded);
    r.set_row_count(result->row_count);
    r.set_rows(std::move(result->rows));
    r.set_run_seconds(result->run_seconds);
    r.set_cpu_seconds(result->cpu_seconds);
    if (!result->ok) return finish(v1::RUN_EXCEPTION, result->error, result->detail);
    return finish(v1::RUN_DONE, "");
  }

  absl::StatusOr<std::pair<std::unique_ptr<WorkerProcess>, WorkerStart>> StartWorker(
      JobContext& job, const std::string& process_name, int timeout_s,
      const std::function<bool()>& abort) {
    WorkerSpawnOptions o;
    o.python = job.python;
    o.arguments = job.arguments;
    o.env = job.env;
    o.env["PRS_PROCESS_NAME"] = process_name;
    const fs::path logs(job.log_dir);
    o.env["PRS_ENTRY_SCRIPT_LOG"] =
        (logs / "user/entry_script_log" / options_.node_id / (process_name + ".log.txt")).string();
    const std::string work = (fs::path(job.work_dir) / process_name).string();
    if (auto s = MakeDirs(work); !s.ok()) return s;
    o.env["PRS_WORKING_DIR"] = work;
    o.cwd = job.code_dir;
    o.stdout_path =
        (logs / "user/stdout" / options_.node_id / (process_name + ".stdout.txt")).string();
    o.stderr_path =
        (logs / "user/stderr" / options_.node_id / (process_name + ".stderr.txt")).string();
    auto worker = WorkerProcess::Spawn(o);
    if (!worker.ok()) return worker.status();
    // As ParallelRunStep: init() may take up to 3 x run_invocation_timeout + 30 s.
    auto start = (*worker)->WaitReady(absl::Seconds(3 * timeout_s + 30), abort);
    if (!start.ok()) {
      (*worker)->Kill(kKillGrace);
      WorkerStart failed;
      if (start.status().code() == absl::StatusCode::kCancelled) {
        return absl::CancelledError("the job was stopped while the worker started");
      }
      if (start.status().code() == absl::StatusCode::kDeadlineExceeded) {
        failed.error = absl::StrCat("init() did not finish within ", 3 * timeout_s + 30,
                                    " s (3 x run_invocation_timeout + 30)");
      } else {
        failed.error = absl::StrCat("the worker exited before init() finished (",
                                    (*worker)->exit_description(), "); see ", o.stderr_path);
        // An interpreter that cannot start is as final as a script that cannot load.
        failed.load_failed = (*worker)->exit_description() == "exit code 127";
      }
      return std::make_pair(std::unique_ptr<WorkerProcess>(), failed);
    }
    if (!start->ready) {
      spdlog::warn("worker {} failed to start: {}", process_name, start->error);
      (*worker)->Kill(kKillGrace);
      return std::make_pair(std::unique_ptr<WorkerProcess>(), *start);
    }
    spdlog::info("worker {} ready pid={} job={}", process_name, (*worker)->pid(), job.job_id);
    return std::make_pair(*std::move(worker), *start);
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
        for (auto& r : batch) *req.add_results() = r;
        v1::ReportResultsResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(Deadline(kRpcDeadline));
        grpc::Status s = stub_->ReportResults(&ctx, req, &resp);
        if (s.ok()) {
          backoff.Reset();
          for (int i = 0; i < resp.accepted_size(); ++i) {
            if (!resp.accepted(i)) {
              spdlog::warn("result rejected as stale job={} task={}", batch[i].job_id(),
                           batch[i].task_id());
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
  std::atomic<int> next_process_{0};
  absl::Mutex session_mu_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool reporter_done_ ABSL_GUARDED_BY(mu_) = false;
  std::string agent_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  std::shared_ptr<JobContext> job_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<JobContext> closing_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Task> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> running_ ABSL_GUARDED_BY(mu_);       // leases being run
  std::vector<int64_t> reporting_ ABSL_GUARDED_BY(mu_);  // leases being reported
  grpc::ClientContext* pull_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  AgentOptions o = options;
  if (o.master_address.empty()) return absl::InvalidArgumentError("--master is required");
  if (o.node_id.empty()) o.node_id = HostName();
  if (o.node_id.find('/') != std::string::npos || o.node_id == "." || o.node_id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-id '", o.node_id, "' must not contain '/'; it names log folders"));
  }
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

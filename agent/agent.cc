#include "agent/agent.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iterator>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/job_workspace.h"
#include "agent/log_appender.h"
#include "agent/log_shipper.h"
#include "agent/master_client.h"
#include "agent/report_bounds.h"
#include "agent/worker_pool.h"
#include "common/file_io.h"
#include "common/paths.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {
namespace fs = std::filesystem;

constexpr int kReportBatch = 64;
constexpr absl::Duration kReportLinger = absl::Milliseconds(5);
constexpr int kReportTriesWhileStopping = 3;

}  // namespace

// The composition: the pull, heartbeat and report loops, over the master
// client, the worker pool and the log shipper.
class Agent::Impl {
 public:
  Impl(const AgentOptions& options, std::string python_dir,
       std::unique_ptr<MasterTransport> transport)
      : options_(options),
        ip_(PrimaryIp()),
        workspace_options_{options.work_dir, options.node_id, options.python,
                           std::move(python_dir)},
        client_(MasterClientOptions{options.master_address, options.node_id, options.ship_logs,
                                    [this](const std::string&) { pool_.DropQueued(); },
                                    options.gpus.value_or(std::vector<std::string>{})},
                std::move(transport)),
        pool_(WorkerPoolOptions{
            options.node_id, ip_, options.gpus.value_or(std::vector<std::string>{}),
            options.set_visible_devices, options.clock, &log_appender_,
            [this](std::vector<v1::TaskResult> results) { PushResults(std::move(results)); }}),
        shipper_(&client_, &log_appender_, [this] { return pool_.CurrentJob(); }) {}

  void Run() {
    std::thread heartbeat([this] { HeartbeatLoop(); });
    std::thread reporter([this] { ReporterLoop(); });
    std::thread shipper([this] {
      if (options_.ship_logs) shipper_.Run();
    });
    PullLoop();
    StopJob(/*kill_running=*/false);
    {
      absl::MutexLock lock(&mu_);
      reporter_done_ = true;
    }
    shipper_.Finish();
    heartbeat.join();
    reporter.join();
    shipper.join();
    client_.Unregister();
    if (log_appender_.Retry() > 0 || log_appender_.dropped() > 0) {
      spdlog::error("some log records could not be written: {} dropped", log_appender_.dropped());
    }
  }

  void Stop() {
    client_.Stop();
    pool_.Stop();
  }

 private:
  bool ReporterDone() {
    absl::MutexLock lock(&mu_);
    return reporter_done_;
  }

  // Stops the current job (only `job_id`, when given) and ships its logs now.
  void StopJob(bool kill_running, const std::string& job_id = "") {
    if (pool_.StopJob(kill_running, job_id)) shipper_.ShipNow();
  }

  // --- Heartbeats -----------------------------------------------------------
  void HeartbeatLoop() {
    for (;;) {
      if (ReporterDone()) return;
      const absl::Duration interval = client_.heartbeat_interval();
      v1::HeartbeatRequest req = HeldNow();
      log_appender_.Retry();  // records a full disk or a lack of fds held back
      const std::string agent_id = client_.EnsureSession();
      if (agent_id.empty()) {
        client_.SleepUnlessStopping(interval);
        if (client_.stopping() && ReporterDone()) return;
        continue;
      }
      req.set_agent_id(agent_id);
      absl::StatusOr<v1::HeartbeatResponse> resp = client_.Heartbeat(req, interval * 2);
      if (resp.ok()) {
        for (const auto& stop : resp->stop_job_ids()) {
          if (stop == req.job_id()) {
            spdlog::info("master says stop job={}", stop);
            StopJob(/*kill_running=*/true, stop);
          }
        }
      }
      // Sleep the interval, waking early only to exit.
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return reporter_done_; };
      mu_.AwaitWithTimeout(absl::Condition(&done), interval);
      if (reporter_done_) return;
    }
  }

  // The job, busy workers and every lease this node holds. The pool is read
  // before the results: a lease moves from the pool to the results, never
  // back, so it is counted at least once.
  v1::HeartbeatRequest HeldNow() {
    WorkerPool::Held held = pool_.held();
    v1::HeartbeatRequest req;
    req.set_job_id(held.job_id);
    req.set_busy_workers(held.busy_workers);
    for (const std::string& id : held.lease_ids) req.add_held_lease_ids(id);
    const absl::Time now = absl::Now();
    for (const auto& r : held.running) {
      v1::RunningTask* t = req.add_running();
      t->set_job_id(held.job_id);
      t->set_task_id(r.task_id);
      t->set_process_name(r.process_name);
      t->set_running_ms(absl::ToInt64Milliseconds(now - r.since));
    }
    absl::MutexLock lock(&mu_);
    for (const auto& r : results_) req.add_held_lease_ids(r.lease_id());
    for (const std::string& id : reporting_) req.add_held_lease_ids(id);
    return req;
  }

  // --- Pulling --------------------------------------------------------------
  void PullLoop() {
    Backoff backoff;
    while (!client_.stopping()) {
      const int want = pool_.WaitForRoom(options_.prefetch_per_worker);
      if (want <= 0) break;
      const std::string agent_id = client_.EnsureSession();
      if (agent_id.empty()) break;
      v1::PullTasksRequest req;
      req.set_agent_id(agent_id);
      req.set_max_tasks(want);
      req.set_job_id(pool_.CurrentJob());
      req.set_wait_ms(static_cast<int32_t>(absl::ToInt64Milliseconds(options_.pull_wait)));
      absl::StatusOr<v1::PullTasksResponse> resp = client_.PullTasks(req);
      if (client_.stopping()) {
        // Leases we got while stopping go back at once.
        if (resp.ok()) GiveBack(TakeTasks(*resp));
        break;
      }
      if (absl::IsNotFound(resp.status())) continue;  // the session was dropped
      if (!resp.ok()) {
        spdlog::warn("pull failed: {} ({}); retrying", std::string(resp.status().message()),
                     static_cast<int>(resp.status().code()));
        client_.SleepUnlessStopping(backoff.Next());
        continue;
      }
      backoff.Reset();
      // The job ended: its workers stop now, not at the next heartbeat.
      for (const auto& stop : resp->stop_job_ids()) {
        spdlog::info("master says stop job={}", stop);
        StopJob(/*kill_running=*/true, stop);
      }
      // No tasks: no work for us; idle workers of a finished job may go.
      if (resp->tasks_size() == 0) continue;
      const std::string job_id = resp->tasks(0).job_id();
      std::vector<v1::Task> tasks = TakeTasks(*resp);
      if (!pool_.IsRunning(job_id)) {
        absl::Status status = SwitchJob(agent_id, job_id);
        if (!status.ok()) {
          JobFailedToStart(job_id, status, tasks);
          client_.SleepUnlessStopping(backoff.Next());
          continue;
        }
        // Pulled while another job's workers ran: keep what this job's
        // queue takes, and give the rest back unrun for other nodes.
        const size_t room =
            static_cast<size_t>(std::max(1, pool_.RoomNow(options_.prefetch_per_worker)));
        if (tasks.size() > room) {
          GiveBack(std::vector<v1::Task>(std::make_move_iterator(tasks.begin() + room),
                                         std::make_move_iterator(tasks.end())));
          tasks.resize(room);
        }
      }
      GiveBack(pool_.Enqueue(job_id, std::move(tasks)));
    }
  }

  static std::vector<v1::Task> TakeTasks(v1::PullTasksResponse& resp) {
    return std::vector<v1::Task>(std::make_move_iterator(resp.mutable_tasks()->begin()),
                                 std::make_move_iterator(resp.mutable_tasks()->end()));
  }

  void GiveBack(const std::vector<v1::Task>& tasks) {
    std::vector<v1::TaskResult> back;
    for (const auto& t : tasks) back.push_back(ReleasedResult(t));
    PushResults(std::move(back));
  }

  // Ends the current job's workers and starts the new job's.
  absl::Status SwitchJob(const std::string& agent_id, const std::string& job_id) {
    StopJob(/*kill_running=*/false);
    absl::StatusOr<JobWorkspace> workspace =
        JobWorkspace::Fetch(client_, workspace_options_, agent_id, job_id);
    if (!workspace.ok()) return workspace.status();
    const std::string log_dir = workspace->log_dir();
    if (absl::Status s = pool_.StartJob(*std::move(workspace)); !s.ok()) return s;
    // After the pool runs it: the shipper completes jobs that do not run.
    if (options_.ship_logs) shipper_.Add(job_id, log_dir);
    return absl::OkStatus();
  }

  // The job cannot run here: its mini-batches fail with the reason.
  void JobFailedToStart(const std::string& job_id, const absl::Status& status,
                        const std::vector<v1::Task>& tasks) {
    spdlog::error("cannot start job={}: {}", job_id, std::string(status.message()));
    std::vector<v1::TaskResult> failed;
    for (const auto& t : tasks) {
      v1::TaskResult r;
      r.set_job_id(t.job_id());
      r.set_task_id(t.task_id());
      r.set_lease_id(t.lease_id());
      r.set_status(v1::INIT_FAILED);
      r.set_error(absl::StrCat("the agent cannot prepare the job: ", status.message()));
      failed.push_back(std::move(r));
    }
    PushResults(std::move(failed));
    if (options_.ship_logs) {
      // Whatever it wrote, and then `complete`: the master waits for it.
      shipper_.Add(job_id, JobWorkspace::LogDir(options_.work_dir, job_id));
    }
  }

  // --- Reporting ------------------------------------------------------------
  void PushResults(std::vector<v1::TaskResult> results) {
    for (auto& r : results) BoundResult(r);
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
        // Results that follow within kReportLinger go in the same report:
        // short mini-batches cost one report (and one commit) per batch of
        // them, not one each; a long one waits 5 ms more for its commit.
        auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return reporter_done_ || static_cast<int>(results_.size()) >= kReportBatch / 2;
        };
        mu_.AwaitWithTimeout(absl::Condition(&full), kReportLinger);
        if (results_.empty()) return;  // done and drained
        batch = TakeReport(results_, kReportBatch);
        for (const auto& r : batch) reporting_.push_back(r.lease_id());
      }
      ReportBatch(batch);
      absl::MutexLock lock(&mu_);
      reporting_.clear();
    }
  }

  // Sends one batch until the master acknowledges it, the session is gone, or
  // the agent stops.
  void ReportBatch(const std::vector<v1::TaskResult>& batch) {
    Backoff backoff;
    int tries_while_stopping = 0;
    for (;;) {
      const std::string agent_id = client_.EnsureSession();
      if (agent_id.empty()) return;
      absl::StatusOr<v1::ReportResultsResponse> resp =
          client_.ReportResults(ReportRequest(agent_id, batch));
      if (resp.ok()) {
        LogRejected(batch, *resp);
        return;
      }
      // The session's leases are void: these results would be rejected.
      if (absl::IsNotFound(resp.status())) return;
      const std::string error(resp.status().message());
      if (client_.stopping()) {
        // A few more tries at shutdown, then give up: the master leases the
        // mini-batches again once this session is declared lost.
        if (++tries_while_stopping > kReportTriesWhileStopping) {
          spdlog::warn("giving up reporting {} results: {}", batch.size(), error);
          return;
        }
        spdlog::warn("report failed: {}; retrying before exit", error);
        absl::SleepFor(backoff.Next());  // stopping: no wake-up to wait for
        continue;
      }
      spdlog::warn("report failed: {}; retrying", error);
      client_.SleepUnlessStopping(backoff.Next());
    }
  }

  static v1::ReportResultsRequest ReportRequest(const std::string& agent_id,
                                                const std::vector<v1::TaskResult>& batch) {
    v1::ReportResultsRequest req;
    req.set_agent_id(agent_id);
    // Bounded (and made UTF-8) as they were queued: BoundResult.
    for (const auto& r : batch) *req.add_results() = r;
    return req;
  }

  static void LogRejected(const std::vector<v1::TaskResult>& batch,
                          const v1::ReportResultsResponse& resp) {
    for (int i = 0; i < resp.accepted_size() && i < static_cast<int>(batch.size()); ++i) {
      if (resp.accepted(i)) continue;
      // Expected after a job ends or a lease is given to another agent: not a
      // problem of this node.
      spdlog::info(
          "result of mini-batch {} of job {} not taken: the master no longer holds its "
          "lease (the job ended, or the mini-batch went to another agent)",
          batch[i].task_id(), batch[i].job_id());
    }
  }

  const AgentOptions options_;
  const std::string ip_;
  const WorkspaceOptions workspace_options_;
  LogAppender log_appender_;

  // Results and the report thread's state; see the lock order in agent.h.
  absl::Mutex mu_;
  bool reporter_done_ ABSL_GUARDED_BY(mu_) = false;  // set after the last job stopped
  std::deque<v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> reporting_ ABSL_GUARDED_BY(mu_);  // leases being reported

  // Declared after what their callbacks use, and destroyed before it.
  MasterClient client_;
  WorkerPool pool_;
  LogShipper shipper_;
};

namespace {

// The GPUs this node's workers may use: the agent's own CUDA_VISIBLE_DEVICES
// when it was given one (a Slurm allocation; empty: none), else the indices
// `nvidia-smi -L` lists ("GPU 0: ..."); none without the tool.
std::vector<std::string> DetectGpus() {
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    // Slurm's NoDevFiles and a negative number ("-1") mean none, as for CUDA.
    const absl::string_view v = absl::StripAsciiWhitespace(visible);
    if (v == "NoDevFiles" || absl::StartsWith(v, "-")) return {};
    auto gpus = ParseGpuList(v);
    if (!gpus.ok()) {
      spdlog::warn("CUDA_VISIBLE_DEVICES: {}; the workers get no GPU",
                   std::string(gpus.status().message()));
      return {};
    }
    return *std::move(gpus);
  }
  std::vector<std::string> gpus;
  FILE* p = ::popen("nvidia-smi -L 2>/dev/null", "r");
  if (p == nullptr) return gpus;
  char line[512];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    const absl::string_view text(line);
    if (!absl::StartsWith(text, "GPU ")) continue;
    const size_t colon = text.find(':');
    int index = 0;
    if (colon != absl::string_view::npos && absl::SimpleAtoi(text.substr(4, colon - 4), &index)) {
      gpus.push_back(std::to_string(index));
    }
  }
  ::pclose(p);
  return gpus;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseGpuList(absl::string_view list) {
  std::vector<std::string> gpus;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    const bool plain = std::all_of(item.begin(), item.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':' ||
             c == '/' || c == '.';
    });
    if (!plain || item.size() > 128) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", Printable(std::string(item), 40),
                       "' is not a GPU: give device numbers or UUIDs, as nvidia-smi -L shows "
                       "them, separated by commas (0,2)"));
    }
    if (std::find(gpus.begin(), gpus.end(), item) != gpus.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("GPU '", std::string(item), "' is named twice; name each device once"));
    }
    gpus.emplace_back(item);
  }
  return gpus;
}

absl::StatusOr<std::vector<std::string>> ParseGpusOption(absl::string_view text) {
  int count = 0;
  if (absl::SimpleAtoi(text, &count)) {
    if (count < 0 || count > 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat("--gpus ", count, ": give a count from 0 to 1024, or a list (0,2)"));
    }
    std::vector<std::string> gpus;
    for (int i = 0; i < count; ++i) gpus.push_back(std::to_string(i));
    return gpus;
  }
  auto gpus = ParseGpuList(text);
  if (!gpus.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--gpus: ", gpus.status().message()));
  }
  return gpus;
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  AgentOptions o = options;
  // Workers never inherit the agent's own CUDA_VISIBLE_DEVICES when the
  // admin chose the GPUs (--gpus) or the agent was given some (Slurm): they
  // get theirs, or an empty one.
  o.set_visible_devices = o.gpus.has_value() || std::getenv("CUDA_VISIBLE_DEVICES") != nullptr;
  if (!o.gpus) o.gpus = DetectGpus();
  o.set_visible_devices = o.set_visible_devices || !o.gpus->empty();
  if (o.clock == nullptr) o.clock = RealClock::Get();
  if (o.master_address.empty()) return absl::InvalidArgumentError("--master is required");
  if (o.node_id.empty()) o.node_id = HostName();
  // As the master checks it: a node id names log folders and goes into records.
  const bool plain = std::all_of(o.node_id.begin(), o.node_id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (!plain || o.node_id.size() > 128 || o.node_id == "." || o.node_id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-id '", Printable(o.node_id),
                     "' must be at most 128 letters, digits, '.', '_' or '-' (not . or ..); it "
                     "names log folders, e.g. node-a"));
  }
  // Workers run in the job's code folder: every path handed to them is
  // absolute, whatever folder the agent was started from.
  std::error_code ec;
  o.work_dir = fs::absolute(o.work_dir, ec).lexically_normal().string();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--work-dir: ", ec.message()));
  if (auto s = MakeDirs(o.work_dir); !s.ok()) return s;
  auto python_dir = FindPythonRuntimeDir();
  if (!python_dir.ok()) return absl::FailedPreconditionError(python_dir.status().message());
  auto transport = MakeGrpcTransport(o.master_address, o.tls, o.token);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<Agent>(
      new Agent(std::make_unique<Impl>(o, *python_dir, *std::move(transport))));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;
void Agent::Run() { impl_->Run(); }
void Agent::Stop() { impl_->Stop(); }

}  // namespace prs::agent

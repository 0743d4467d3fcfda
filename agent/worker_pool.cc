#include "agent/worker_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/gpu_query.h"
#include "agent/job_log.h"
#include "agent/resource_monitor.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kShutdownGrace = absl::Seconds(10);
constexpr absl::Duration kKillGrace = absl::Seconds(3);
// The prefetch of short mini-batches: about this much work queued per worker,
// and no more than this many mini-batches.
constexpr double kPrefetchWorkSeconds = 0.1;
constexpr int kMaxPrefetchPerWorker = 32;

}  // namespace

// A job as this pool runs it.
struct WorkerPool::Job {
  Job(JobWorkspace workspace, LogAppender* appender, Clock* clock)
      : ws(std::move(workspace)),
        log(ws.log_dir(), ws.node_id(), ParseLogLevel(ws.spec().logging_level()), appender, clock) {
  }

  int64_t timeout_s() const { return std::max<int64_t>(1, ws.spec().run_invocation_timeout()); }
  std::function<bool()> aborted() {
    return [this] { return abort.load(); };
  }

  const JobWorkspace ws;
  const JobLog log;
  // Kill running attempts (cancel, stop). Set under WorkerPool::mu_, so that
  // the slots' waits see it.
  std::atomic<bool> abort{false};
  std::map<std::string, pid_t> worker_pids;  // by process name; guarded by WorkerPool::mu_
  std::unique_ptr<ResourceMonitor> monitor;  // set by StartJob, stopped by StopJob
};

// The worker a slot runs, and what it holds.
struct WorkerPool::SlotWorker {
  std::unique_ptr<WorkerProcess> proc;
  std::string name;               // process000, process001, ...
  std::vector<std::string> gpus;  // its GPUs; empty for none
  std::string visible;            // the CUDA_VISIBLE_DEVICES it was started with
};

WorkerIdentities::WorkerIdentities(std::vector<std::string> gpus)
    : gpus_(std::move(gpus)), users_(gpus_.size(), 0) {}

WorkerIdentities::Identity WorkerIdentities::Take(int per_process) {
  Identity id;
  id.name = absl::StrFormat("process%03d", next_process_++);
  const size_t want = std::min(gpus_.size(), static_cast<size_t>(std::max(0, per_process)));
  std::vector<size_t> order(gpus_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // The least used first; stable, so ties go to the lowest position.
  std::stable_sort(order.begin(), order.end(),
                   [this](size_t a, size_t b) { return users_[a] < users_[b]; });
  order.resize(want);
  std::sort(order.begin(), order.end());  // listed in the node's order
  for (size_t i : order) {
    ++users_[i];
    id.gpus.push_back(gpus_[i]);
  }
  return id;
}

void WorkerIdentities::GiveBack(const std::vector<std::string>& gpus) {
  for (const std::string& gpu : gpus) {
    for (size_t i = 0; i < gpus_.size(); ++i) {
      if (gpus_[i] == gpu && users_[i] > 0) {
        --users_[i];
        break;
      }
    }
  }
}

std::string DeviceList(const std::vector<std::string>& gpus) { return absl::StrJoin(gpus, ","); }

StderrTail ReadStderrTail(const std::string& path) {
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

v1::TaskResult ReleasedResult(const v1::Task& t) {
  v1::TaskResult r;
  r.set_job_id(t.job_id());
  r.set_task_id(t.task_id());
  r.set_lease_id(t.lease_id());
  r.set_status(v1::RELEASED);
  r.set_error("given back unrun by the agent");
  return r;
}

WorkerPool::WorkerPool(WorkerPoolOptions options)
    : options_(std::move(options)), identities_(options_.gpus) {}

namespace {
// gpus_per_process: 1 unless the job says (0 hides the GPUs).
int GpusPerProcess(const v1::JobSpec& spec) {
  return spec.has_gpus_per_process() ? spec.gpus_per_process() : 1;
}
}  // namespace

WorkerPool::~WorkerPool() { StopJob(/*kill_running=*/false); }

void WorkerPool::Report(std::vector<v1::TaskResult> results) {
  if (!results.empty()) options_.on_results(std::move(results));
}

// --- The job -------------------------------------------------------------------

absl::Status WorkerPool::StartJob(JobWorkspace workspace) {
  auto job = std::make_shared<Job>(std::move(workspace), options_.log_appender, options_.clock);
  const std::string& job_id = job->ws.job_id();
  const v1::JobSpec& spec = job->ws.spec();
  {
    absl::MutexLock lock(&mu_);
    identities_.NewJob();
  }
  job->log.Node(
      "agent.txt", LogLevel::kInfo,
      absl::StrCat("job ", job_id, " started on node ", options_.node_id, " ip=", options_.ip, ": ",
                   spec.process_count_per_node(), " workers, python=", job->ws.python(),
                   options_.gpus.empty() ? ""
                                         : absl::StrCat(", GPUs ", DeviceList(options_.gpus), ", ",
                                                        GpusPerProcess(spec), " per process")));
  if (spec.resource_monitor_interval() > 0) StartMonitor(*job);
  std::string thread_error;
  std::vector<std::thread> slots = StartSlots(job, &thread_error);
  const int wanted = std::max(1, spec.process_count_per_node());
  if (slots.empty()) {
    if (job->monitor) job->monitor->Stop();
    return absl::ResourceExhaustedError(
        absl::StrCat("node ", options_.node_id, " cannot start a thread for any of its ", wanted,
                     " workers (", thread_error,
                     "); lower process_count_per_node or raise the node's "
                     "process limit (ulimit -u)"));
  }
  if (static_cast<int>(slots.size()) < wanted) {
    job->log.Node("agent.txt", LogLevel::kWarning,
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
    task_seconds_.reset();  // another job's mini-batches say nothing of this one's
  }
  spdlog::info("started job={} workers={} python={}", job_id, spec.process_count_per_node(),
               job->ws.python());
  return absl::OkStatus();
}

void WorkerPool::StartMonitor(Job& job) {
  ResourceMonitorOptions mo;
  mo.out_dir = (fs::path(job.ws.log_dir()) / "perf" / options_.node_id).string();
  mo.interval = absl::Seconds(job.ws.spec().resource_monitor_interval());
  mo.clock = options_.clock;
  mo.gpus = options_.gpus;
  Job* raw = &job;
  mo.workers = [this, raw] {
    std::vector<std::pair<pid_t, std::string>> out;
    absl::MutexLock lock(&mu_);
    for (const auto& [name, pid] : raw->worker_pids) out.emplace_back(pid, name);
    return out;
  };
  auto monitor = ResourceMonitor::Start(std::move(mo));
  if (monitor.ok()) {
    job.monitor = *std::move(monitor);
  } else {
    spdlog::warn("resource monitor off for job={}: {}", job.ws.job_id(),
                 std::string(monitor.status().message()));
  }
}

// A node that cannot start as many worker threads as asked runs with those it
// could start; one that can start none fails the job's tasks with the reason,
// and never aborts.
std::vector<std::thread> WorkerPool::StartSlots(const std::shared_ptr<Job>& job,
                                                std::string* error) {
  std::vector<std::thread> slots;
  const int wanted = std::max(1, job->ws.spec().process_count_per_node());
  for (int i = 0; i < wanted; ++i) {
    try {
      slots.emplace_back([this, job] { SlotLoop(job); });
    } catch (const std::system_error& e) {
      *error = e.what();
      break;
    }
  }
  return slots;
}

// Queued mini-batches are reported RELEASED so the master leases them again
// at once (it rejects them if the leases are already void).
bool WorkerPool::StopJob(bool kill_running, const std::string& job_id) {
  std::vector<std::thread> slots;
  std::shared_ptr<Job> job;
  std::vector<v1::TaskResult> released;
  {
    // One last resource sample while the workers are still there: a job
    // shorter than resource_monitor_interval has their rows too.
    std::shared_ptr<Job> sampled;
    {
      absl::MutexLock lock(&mu_);
      // Not when a stop of it is under way: its workers may be going.
      if (job_ && !closing_ && (job_id.empty() || job_->ws.job_id() == job_id)) sampled = job_;
    }
    if (sampled && sampled->monitor) {
      sampled->monitor->SampleOnce(/*gpu_queries=*/false).IgnoreError();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    // A job the master ended has its running attempts killed now, also when
    // another stop of it (the agent's own, which lets them finish) is under
    // way.
    if (kill_running) {
      for (const auto& j : {job_, closing_}) {
        if (j && (job_id.empty() || j->ws.job_id() == job_id)) j->abort = true;
      }
    }
    // One stop at a time: a second caller waits for the first to finish, so
    // the next job never starts beside the last one's workers.
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closing_ == nullptr; };
    mu_.Await(absl::Condition(&idle));
    if (!job_id.empty() && (!job_ || job_->ws.job_id() != job_id)) return false;
    if (!job_) {
      for (const auto& t : queue_) released.push_back(ReleasedResult(t));
      queue_.clear();
    }
  }
  Report(std::move(released));
  released.clear();
  {
    absl::MutexLock lock(&mu_);
    if (!job_ || (!job_id.empty() && job_->ws.job_id() != job_id)) return false;
    job = job_;
    if (kill_running) job->abort = true;
    for (const auto& t : queue_) released.push_back(ReleasedResult(t));
    queue_.clear();
    closing_ = job;
    slots.swap(slots_);
  }
  Report(std::move(released));
  for (auto& t : slots) t.join();
  if (job->monitor) job->monitor->Stop();
  job->log.Node("agent.txt", LogLevel::kInfo,
                absl::StrCat("job ", job->ws.job_id(), " stopped on this node"));
  if (options_.log_appender != nullptr) options_.log_appender->CloseFiles();
  absl::MutexLock lock(&mu_);
  if (job_ == job) job_.reset();
  if (closing_ == job) closing_.reset();
  task_seconds_.reset();
  return true;
}

bool WorkerPool::IsRunning(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  return job_ && job_->ws.job_id() == job_id && !job_->abort;
}

std::string WorkerPool::CurrentJob() const {
  absl::MutexLock lock(&mu_);
  return job_ ? job_->ws.job_id() : "";
}

// --- The queue -----------------------------------------------------------------

int WorkerPool::PrefetchLocked(int prefetch_per_worker) const {
  const int least = std::max(0, prefetch_per_worker);
  // Timed only while a job runs: a pull between jobs is for the next one.
  if (!job_ || !task_seconds_) return least;
  const double fits = kPrefetchWorkSeconds / std::max(*task_seconds_, 1e-6);
  return std::clamp(static_cast<int>(fits), least, std::max(least, kMaxPrefetchPerWorker));
}

int WorkerPool::PrefetchPerWorker(int prefetch_per_worker) const {
  absl::MutexLock lock(&mu_);
  return PrefetchLocked(prefetch_per_worker);
}

// How many to ask for now, and the least worth a pull: a deep queue is
// refilled by halves, a shallow one as soon as one has room.
int WorkerPool::RoomLocked(int prefetch_per_worker, int* least) const {
  const int procs = job_ ? job_->ws.spec().process_count_per_node() : 1;
  const int prefetch = PrefetchLocked(prefetch_per_worker);
  *least = prefetch > 1 ? procs * prefetch / 2 : 1;
  return procs * (1 + prefetch) - static_cast<int>(queue_.size()) - busy_;
}

int WorkerPool::RoomNow(int prefetch_per_worker) const {
  absl::MutexLock lock(&mu_);
  int least = 0;
  return RoomLocked(prefetch_per_worker, &least);
}

int WorkerPool::WaitForRoom(int prefetch_per_worker) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    int least = 0;
    return stopping_ || RoomLocked(prefetch_per_worker, &least) >= least;
  };
  mu_.Await(absl::Condition(&ready));
  if (stopping_) return 0;
  int least = 0;
  return RoomLocked(prefetch_per_worker, &least);
}

std::vector<v1::Task> WorkerPool::Enqueue(const std::string& job_id, std::vector<v1::Task> tasks) {
  std::vector<v1::Task> back;
  absl::MutexLock lock(&mu_);
  // The job may have been stopped (heartbeat) since the caller looked.
  const bool current = job_ && job_->ws.job_id() == job_id && !job_->abort;
  for (auto& t : tasks) {
    if (current && t.job_id() == job_id) {
      queue_.push_back(std::move(t));
    } else {
      back.push_back(std::move(t));
    }
  }
  return back;
}

void WorkerPool::DropQueued() {
  absl::MutexLock lock(&mu_);
  queue_.clear();
}

WorkerPool::Held WorkerPool::held() const {
  Held held;
  absl::MutexLock lock(&mu_);
  held.job_id = job_ ? job_->ws.job_id() : "";
  held.busy_workers = busy_;
  for (const auto& t : queue_) held.lease_ids.push_back(t.lease_id());
  for (const auto& [lease_id, running] : running_) {
    held.lease_ids.push_back(lease_id);
    held.running.push_back(running);
  }
  return held;
}

void WorkerPool::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

// --- Worker slots --------------------------------------------------------------

std::optional<v1::Task> WorkerPool::PopTask(const std::shared_ptr<Job>& job,
                                            const std::string& process_name) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || closing_ == job || job->abort || !queue_.empty();
  };
  mu_.Await(absl::Condition(&ready));
  if (queue_.empty() || job->abort || queue_.front().job_id() != job->ws.job_id()) {
    return std::nullopt;
  }
  v1::Task t = std::move(queue_.front());
  queue_.pop_front();
  ++busy_;
  running_[t.lease_id()] = Running{t.task_id(), process_name, absl::Now()};
  return t;
}

void WorkerPool::SlotLoop(std::shared_ptr<Job> job) {
  SlotWorker w;
  // The worker's name while it lives; a slot about to start one has none yet.
  while (auto task = PopTask(job, w.proc ? w.name : std::string())) {
    const bool started = w.proc != nullptr;  // else the time includes init()
    v1::TaskResult r = RunTask(*job, *task, w);
    if (!r.error().empty() && r.status() != v1::RELEASED) job->log.Error(*task, r);
    const std::string lease_id = r.lease_id();
    // Reported before the lease leaves running_, so that a heartbeat, which
    // reads the pool before the results, always counts it as held.
    std::vector<v1::TaskResult> done;
    done.push_back(std::move(r));
    const double seconds = done.back().elapsed_seconds();
    const bool timed = started && done.back().status() == v1::RUN_DONE;
    Report(std::move(done));
    absl::MutexLock lock(&mu_);
    running_.erase(lease_id);
    --busy_;
    if (timed && job_ == job) {
      task_seconds_ = task_seconds_ ? 0.8 * *task_seconds_ + 0.2 * seconds : seconds;
    }
  }
  // A worker left here is idle (an aborted attempt kills its worker): let it
  // run shutdown().
  if (w.proc) RetireWorker(*job, w, /*kill=*/false);
}

// Ends a slot's worker (shutdown() first unless `kill`), records how it ended
// in agent.txt, and gives back its GPU.
void WorkerPool::RetireWorker(Job& job, SlotWorker& w, bool kill) {
  if (kill) {
    w.proc->Kill(kKillGrace);
  } else {
    w.proc->Shutdown(kShutdownGrace);
  }
  job.log.Node("agent.txt", LogLevel::kInfo,
               absl::StrCat("worker ", w.name, " pid=", w.proc->pid(),
                            " ended: ", w.proc->exit_description()));
  {
    absl::MutexLock lock(&mu_);
    job.worker_pids.erase(w.name);
    identities_.GiveBack(w.gpus);
  }
  w.proc.reset();
  w.gpus.clear();
}

// --- One mini-batch ------------------------------------------------------------

v1::TaskResult WorkerPool::RunTask(Job& job, const v1::Task& task, SlotWorker& w) {
  v1::TaskResult r;
  r.set_job_id(task.job_id());
  r.set_task_id(task.task_id());
  r.set_lease_id(task.lease_id());
  r.set_items_total(task.items_size());
  const absl::Time start = options_.clock->Now();
  r.set_start_time_ms(absl::ToUnixMillis(start));
  if (!w.proc) {
    if (std::optional<v1::TaskResult> failed = StartSlotWorker(job, w, r, start)) {
      return *std::move(failed);
    }
  }
  return RunOnWorker(job, task, w, r, start);
}

std::optional<v1::TaskResult> WorkerPool::StartSlotWorker(Job& job, SlotWorker& w,
                                                          v1::TaskResult& r, absl::Time start) {
  {
    absl::MutexLock lock(&mu_);
    WorkerIdentities::Identity id = identities_.Take(GpusPerProcess(job.ws.spec()));
    w.name = std::move(id.name);
    w.gpus = std::move(id.gpus);
    // The heartbeat names the new worker from now on.
    if (auto it = running_.find(r.lease_id()); it != running_.end())
      it->second.process_name = w.name;
  }
  r.set_process_name(w.name);
  absl::StatusOr<WorkerStart> started = StartWorker(job, w);
  if (!started.ok() || !started->ready) {
    if (w.proc) RetireWorker(job, w, /*kill=*/true);
    absl::MutexLock lock(&mu_);
    identities_.GiveBack(w.gpus);
    w.gpus.clear();
  }
  if (!started.ok()) {
    return Finish(
        job, r, start,
        started.status().code() == absl::StatusCode::kCancelled ? v1::RELEASED : v1::INIT_FAILED,
        std::string(started.status().message()));
  }
  if (!started->ready) {
    return Finish(job, r, start, started->load_failed ? v1::LOAD_FAILED : v1::INIT_FAILED,
                  started->error, started->detail);
  }
  return std::nullopt;
}

v1::TaskResult WorkerPool::RunOnWorker(Job& job, const v1::Task& task, SlotWorker& w,
                                       v1::TaskResult& r, absl::Time start) {
  r.set_process_name(w.name);
  r.set_pid(w.proc->pid());
  job.log.Node(w.name + ".txt", LogLevel::kInfo,
               absl::StrCat("mini-batch ", task.task_id(), " picked: try ", task.attempt(), ", ",
                            task.items_size(), " items, pid=", w.proc->pid()));
  std::vector<std::string> items(task.items().begin(), task.items().end());
  if (auto s = w.proc->SendRun(task.task_id(), items); !s.ok()) {
    w.proc->Kill(kKillGrace);
    std::string why =
        absl::StrCat("the worker process died before run() (", w.proc->exit_description(), ")");
    RetireWorker(job, w, /*kill=*/true);
    return Finish(job, r, start, v1::WORKER_DIED, why);
  }
  absl::StatusOr<WorkerResult> result =
      w.proc->WaitResult(absl::Seconds(job.timeout_s()), job.aborted());
  if (!result.ok()) return RunFailed(job, w, r, start, result.status());
  if (!result->ok && !w.visible.empty() && IsCudaOutOfMemory(result->error)) {
    // Said as such, with the memory of the GPUs the worker saw, asked right
    // after (nvidia-smi answers within 5 s or is given up).
    const std::string memory =
        GpuMemoryNow(absl::StrSplit(w.visible, ',', absl::SkipEmpty()), QueryGpus());
    result->error =
        absl::StrCat("CUDA out of memory (", memory.empty() ? "GPU memory unknown" : memory,
                     " when run() failed): ", result->error);
  }
  return RunReturned(job, r, start, *result);
}

// run() did not answer: it timed out, the job was stopped, or the worker died.
v1::TaskResult WorkerPool::RunFailed(Job& job, SlotWorker& w, v1::TaskResult& r, absl::Time start,
                                     const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    w.proc->DumpStacks(absl::Milliseconds(300));
    RetireWorker(job, w, /*kill=*/true);
    return Finish(
        job, r, start, v1::RUN_TIMEOUT,
        absl::StrCat("run() did not return within run_invocation_timeout (", job.timeout_s(),
                     " s); the worker was killed and will be replaced; its Python "
                     "stack at the timeout is in its stderr file"));
  }
  if (status.code() == absl::StatusCode::kCancelled) {
    RetireWorker(job, w, /*kill=*/true);
    return Finish(job, r, start, v1::RELEASED, "the job was stopped");
  }
  w.proc->Kill(kKillGrace);
  const StderrTail tail = ReadStderrTail(job.ws.StderrPath(w.name));
  std::string why =
      absl::StrCat("the worker process died during run() (", w.proc->exit_description(), ")",
                   tail.last_line.empty() ? "" : absl::StrCat(": ", tail.last_line));
  RetireWorker(job, w, /*kill=*/true);
  return Finish(job, r, start, v1::WORKER_DIED, why, tail.lines);
}

v1::TaskResult WorkerPool::RunReturned(Job& job, v1::TaskResult& r, absl::Time start,
                                       WorkerResult& result) {
  r.set_items_succeeded(result.items_succeeded);
  if (result.items) r.set_items_total(*result.items);
  r.set_header(std::move(result.header));
  r.set_row_count(result.row_count);
  r.set_rows(std::move(result.rows));
  r.set_run_seconds(result.run_seconds);
  r.set_cpu_seconds(result.cpu_seconds);
  if (!result.ok) return Finish(job, r, start, v1::RUN_EXCEPTION, result.error, result.detail);
  if (r.items_total() > 0 && r.items_succeeded() < r.items_total()) {
    // Which inputs failed is the script's to know; the report lists them all.
    const int64_t failed = r.items_total() - r.items_succeeded();
    return Finish(
        job, r, start, v1::RUN_DONE,
        "run() returned fewer elements than inputs; the inputs left over count as "
        "failed items",
        absl::StrCat("run() returned ", r.items_succeeded(),
                     r.items_succeeded() == 1 ? " element" : " elements", " for ", r.items_total(),
                     " inputs: ", failed, failed == 1 ? " item" : " items",
                     " failed. Each returned element marks one input as succeeded; which "
                     "inputs failed only the script can say (log them with "
                     "EntryScript().logger). The mini-batch's inputs are listed above.\n"));
  }
  return Finish(job, r, start, v1::RUN_DONE, "");
}

v1::TaskResult WorkerPool::Finish(Job& job, v1::TaskResult& r, absl::Time start,
                                  v1::AttemptStatus status, std::string error, std::string detail) {
  r.set_status(status);
  r.set_error(std::move(error));
  r.set_error_detail(std::move(detail));
  r.set_elapsed_seconds(absl::ToDoubleSeconds(options_.clock->Now() - start));
  if (!r.process_name().empty() && status != v1::RELEASED) {
    job.log.Node(
        r.process_name() + ".txt", LogLevel::kInfo,
        absl::StrFormat("mini-batch %d completed: status=%s ip=%s pid=%d items_total=%d "
                        "items_succeeded=%d items_failed=%d start=%s duration=%.3fs "
                        "process_time=%.3fs run_time=%.3fs%s%s",
                        r.task_id(), v1::AttemptStatus_Name(status), options_.ip, r.pid(),
                        r.items_total(), r.items_succeeded(), r.items_total() - r.items_succeeded(),
                        absl::FormatTime("%Y-%m-%d %H:%M:%E3S", start, absl::UTCTimeZone()),
                        r.elapsed_seconds(), r.cpu_seconds(), r.run_seconds(),
                        r.error().empty() ? "" : " error=", r.error()));
  }
  return std::move(r);
}

// --- Starting a worker ---------------------------------------------------------

// Spawns the slot's worker and waits for init(). On success w.proc is set.
absl::StatusOr<WorkerStart> WorkerPool::StartWorker(Job& job, SlotWorker& w) {
  absl::StatusOr<WorkerSpawnOptions> o =
      job.ws.WorkerOptions(w.name, w.gpus, options_.set_visible_devices);
  if (!o.ok()) return o.status();
  o->clock = options_.clock;
  if (o->python.find('/') != std::string::npos && ::access(o->python.c_str(), X_OK) != 0) {
    WorkerStart failed;
    failed.load_failed = true;
    failed.error = absl::StrCat(
        "the worker interpreter ", o->python, " cannot be executed on node ", options_.node_id,
        ": ", std::strerror(errno), "; set environment.python to an interpreter every node has");
    return failed;
  }
  auto spawned = WorkerProcess::Spawn(*o);
  if (!spawned.ok()) return spawned.status();
  w.proc = *std::move(spawned);
  {
    absl::MutexLock lock(&mu_);
    job.worker_pids[w.name] = w.proc->pid();
  }
  // Its GPUs, in agent.txt and in its own log.
  std::string devices;
  if (const auto cuda = o->env.find("CUDA_VISIBLE_DEVICES"); cuda != o->env.end()) {
    w.visible = cuda->second;
    devices = absl::StrCat(" CUDA_VISIBLE_DEVICES=", cuda->second);
    if (cuda->second != DeviceList(w.gpus)) absl::StrAppend(&devices, " (set by the job)");
  }
  job.log.Node("agent.txt", LogLevel::kInfo,
               absl::StrCat("worker ", w.name, " started pid=", w.proc->pid(), devices));
  job.log.Node(w.name + ".txt", LogLevel::kInfo,
               absl::StrCat("worker started pid=", w.proc->pid(), devices));
  // As ParallelRunStep: init() may take up to 3 x run_invocation_timeout + 30 s.
  auto start = w.proc->WaitReady(absl::Seconds(3 * job.timeout_s() + 30), job.aborted());
  if (!start.ok()) return InitFailed(job, w, start.status());
  if (!start->ready) {
    spdlog::warn("worker {} failed to start: {}", w.name, start->error);
    job.log.Node("agent.txt", LogLevel::kWarning,
                 absl::StrCat("worker ", w.name, " failed to start: ", start->error));
    return *start;
  }
  spdlog::info("worker {} ready pid={} job={}", w.name, w.proc->pid(), job.ws.job_id());
  job.log.Node("agent.txt", LogLevel::kDebug,
               absl::StrCat("worker ", w.name, " ready: init() returned"));
  return *start;
}

// The worker did not say READY: the job was stopped, init() took too long, or
// the process ended.
absl::StatusOr<WorkerStart> WorkerPool::InitFailed(Job& job, SlotWorker& w,
                                                   const absl::Status& status) {
  w.proc->Kill(kKillGrace);
  if (status.code() == absl::StatusCode::kCancelled) {
    return absl::CancelledError("the job was stopped while the worker started");
  }
  WorkerStart failed;
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    failed.error = absl::StrCat("init() did not finish within ", 3 * job.timeout_s() + 30,
                                " s (3 x run_invocation_timeout + 30)");
    return failed;
  }
  // Why it ended is in the last lines it wrote (an interpreter that cannot
  // start, an import that crashed the process).
  const StderrTail tail = ReadStderrTail(job.ws.StderrPath(w.name));
  failed.error =
      absl::StrCat("the worker exited before init() finished (", w.proc->exit_description(), ")",
                   tail.last_line.empty() ? "" : absl::StrCat(": ", tail.last_line),
                   "; see logs/user/stderr/", options_.node_id, "/", w.name, ".stderr.txt");
  failed.detail = tail.lines;
  // An interpreter that cannot start is as final as a script that cannot load.
  failed.load_failed = w.proc->exit_description() == "exit code 127";
  return failed;
}

}  // namespace prs::agent

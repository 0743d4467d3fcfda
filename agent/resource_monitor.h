#ifndef PRS_AGENT_RESOURCE_MONITOR_H_
#define PRS_AGENT_RESOURCE_MONITOR_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/proc_readings.h"
#include "common/clock.h"

namespace prs::agent {

struct ResourceMonitorOptions {
  std::string out_dir;      // e.g. <job logs>/perf/<node>; created if missing
  absl::Duration interval;  // > 0
  // Returns the worker processes to sample now: pid and process name (e.g. "process001").
  // Called by whichever thread samples (the monitor's, or a SampleOnce() caller), with no lock of
  // the monitor held; may be null.
  std::function<std::vector<std::pair<pid_t, std::string>>()> workers;
  // The node's GPUs (as CUDA_VISIBLE_DEVICES names them). When there are
  // some, each sample also asks nvidia-smi for their utilisation, memory,
  // temperature and power (gpu_usage.csv; other GPUs of the machine are left
  // out) and for the GPU memory of each worker (gpu_processes_usage.csv).
  std::vector<std::string> gpus;
  // Stamps the rows and names the os/ listings; must outlive the monitor. The
  // sampling period and CPU percents use the steady clock, so that a step of
  // the wall clock neither stalls sampling nor distorts a percent.
  Clock* clock = RealClock::Get();
};

// Samples /proc every interval on its own thread (first sample right away) and appends to
// out_dir/node_resource_usage.csv, processes_resource_usage.csv, node_disk_usage.csv (with
// `gpus`, gpu_usage.csv and gpu_processes_usage.csv too), and writes
// out_dir/os/%Y%m%d%H/processes_%M (a ps-like listing of every process). CSV files get a header row
// when created. Thread-safe; Stop() (also the destructor) joins the thread.
//
// Times are UTC. Disk I/O and network columns are cumulative since boot. CPU percents are
// over the time since the previous sample (the node's first sample: since boot; a worker's first
// sample: 0), and a worker's percent is of one core, so it may pass 100. The os/ listing's %CPU is
// the process's lifetime average, like ps. A source that cannot be read leaves its CSV fields
// empty rather than writing a made-up 0.
//
// Samples taken concurrently (SampleOnce() while the thread samples) are both written, each row
// whole, but not necessarily in time order.
class ResourceMonitor {
 public:
  // INVALID_ARGUMENT when out_dir is empty or interval is not positive; PERMISSION_DENIED when
  // out_dir cannot be created. The thread takes its first sample at once.
  static absl::StatusOr<std::unique_ptr<ResourceMonitor>> Start(ResourceMonitorOptions options);
  ~ResourceMonitor();

  ResourceMonitor(const ResourceMonitor&) = delete;
  ResourceMonitor& operator=(const ResourceMonitor&) = delete;

  // Ends the thread: returns once a sample in progress has been written. Idempotent; concurrent
  // callers all return after the thread has ended. Must not be called from `workers`.
  void Stop();

  // One sample now, on the caller's thread (used by Start's thread and by tests).
  // Writes every row it can; returns the first error met (UNAVAILABLE when /proc/stat or
  // /proc/meminfo cannot be read, or the error of a file that cannot be written). Without
  // `gpu_queries` the GPU files are left alone: nvidia-smi can take seconds, too long for a
  // caller that must not wait (a job stopping on the heartbeat thread).
  absl::Status SampleOnce(bool gpu_queries = true);

 private:
  // What the previous sample of one worker saw.
  struct ProcessCpu {
    uint64_t start_ticks = 0;  // start time since boot, tells a reused pid apart
    uint64_t cpu_ticks = 0;    // utime + stime
    std::chrono::steady_clock::time_point at;
    double percent = 0;
  };

  explicit ResourceMonitor(ResourceMonitorOptions options);
  void Run();
  // The node's CPU percent against the previous sample; empty without a reading.
  std::optional<double> NodeCpuPercentLocked(const std::optional<CpuReading>& cpu)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each worker's CPU percent (of one core) against its previous sample.
  std::vector<double> WorkerCpuPercentsLocked(const std::vector<WorkerReading>& readings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ResourceMonitorOptions options_;

  // Deltas between samples. Held only for arithmetic: /proc is read and files are written
  // outside it.
  absl::Mutex mu_;
  // Aggregate /proc/stat jiffies of the previous sample; 0 before the first, so that the
  // first delta is since boot.
  uint64_t last_cpu_busy_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_cpu_total_ ABSL_GUARDED_BY(mu_) = 0;
  double last_cpu_percent_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<pid_t, ProcessCpu> last_process_cpu_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace prs::agent

#endif  // PRS_AGENT_RESOURCE_MONITOR_H_

#include "agent/resource_monitor.h"

#include <system_error>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/gpu_query.h"
#include "common/file_io.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {

namespace chrono = std::chrono;

constexpr char kNodeCsv[] = "node_resource_usage.csv";
constexpr char kNodeHeader[] =
    "Utc Time,Cpu Percent,Memory Total (MB),Memory Available (MB),Memory Used (MB),"
    "Memory Used Percent,Disk Io Read Count,Disk Io Write Count,Disk Io Read (MB),"
    "Disk Io Write (MB),Network Sent (MB),Network Recv (MB),# of TCP Connections,"
    "# of UDP Connections";
constexpr char kProcessesCsv[] = "processes_resource_usage.csv";
constexpr char kProcessesHeader[] =
    "Utc Time,Pid,Process Name,Cpu Percent,Rss (MB),Threads,Open Files";
constexpr char kGpuCsv[] = "gpu_usage.csv";
constexpr char kGpuHeader[] =
    "Utc Time,GPU,Uuid,Name,Utilization Percent,Memory Used (MiB),Memory Total (MiB),"
    "Temperature (C),Power (W)";
constexpr char kGpuProcessesCsv[] = "gpu_processes_usage.csv";
constexpr char kGpuProcessesHeader[] = "Utc Time,Pid,Process Name,GPU Uuid,GPU Memory (MiB)";
constexpr char kDiskCsv[] = "node_disk_usage.csv";
constexpr char kDiskHeader[] =
    "Utc Time,Mount Point,File System,Total (MB),Used (MB),Free (MB),Used Percent";

constexpr double kMiB = 1024.0 * 1024.0;
// A CPU percent over less time than this is mostly rounding of 10 ms ticks, so a sample that
// close to the previous one repeats the previous percent instead.
constexpr double kMinCpuSpanSeconds = 0.1;

// --- Formatting ----------------------------------------------------------------------------

std::string Fixed2(double v) { return absl::StrFormat("%.2f", v); }
std::string Mb(uint64_t bytes) { return Fixed2(static_cast<double>(bytes) / kMiB); }
// Percent of `part` in `whole`; 0 when `whole` is 0.
std::string Percent(double part, double whole) {
  return Fixed2(whole > 0 ? part * 100.0 / whole : 0.0);
}

template <typename T, typename F>
std::string OrEmpty(const std::optional<T>& v, F format) {
  return v ? format(*v) : std::string();
}

// Everything one sample reads, before any lock is taken.
struct Sample {
  absl::Time now;
  std::optional<CpuReading> cpu;
  std::optional<MemoryReading> memory;
  // Disk I/O and network counters are cumulative since boot, as psutil reports them; a reader
  // takes differences between rows.
  std::optional<DiskIoReading> disk_io;
  std::optional<NetworkReading> network;
  std::optional<int64_t> tcp;
  std::optional<int64_t> udp;
  std::vector<WorkerReading> workers;
  std::vector<MountReading> mounts;
  std::string listing;
};

Sample ReadSample(absl::Time now, std::vector<std::pair<pid_t, std::string>> workers) {
  Sample s;
  s.now = now;
  s.cpu = ReadCpu();
  s.memory = ReadMemory();
  s.disk_io = ReadDiskIo();
  s.network = ReadNetwork();
  s.tcp = CountSockets("tcp");
  s.udp = CountSockets("udp");
  for (auto& [pid, name] : workers) {
    if (std::optional<WorkerReading> w = ReadWorker(pid, std::move(name))) {
      s.workers.push_back(*std::move(w));
    }
  }
  s.mounts = ReadMounts();
  s.listing = ProcessListing(s.cpu);
  return s;
}

template <typename T>
std::string Count(T v) {
  return absl::StrCat(v);
}

std::string NodeRow(const Sample& s, const std::optional<double>& node_cpu,
                    const std::string& utc) {
  const auto mb_kb = [](uint64_t kb) { return Fixed2(static_cast<double>(kb) / 1024.0); };
  std::vector<std::string> node = {utc, OrEmpty(node_cpu, Fixed2)};
  if (s.memory) {
    // Used is what is not available, which is also what the percent measures.
    const uint64_t used_kb = s.memory->total_kb - s.memory->available_kb;
    node.insert(node.end(),
                {mb_kb(s.memory->total_kb), mb_kb(s.memory->available_kb), mb_kb(used_kb),
                 Percent(static_cast<double>(used_kb), static_cast<double>(s.memory->total_kb))});
  } else {
    node.insert(node.end(), 4, "");
  }
  if (s.disk_io) {
    node.insert(node.end(), {Count(s.disk_io->reads), Count(s.disk_io->writes),
                             Mb(s.disk_io->read_bytes), Mb(s.disk_io->write_bytes)});
  } else {
    node.insert(node.end(), 4, "");
  }
  node.push_back(OrEmpty(s.network, [](const NetworkReading& n) { return Mb(n.sent_bytes); }));
  node.push_back(OrEmpty(s.network, [](const NetworkReading& n) { return Mb(n.received_bytes); }));
  node.push_back(OrEmpty(s.tcp, [](int64_t v) { return Count(v); }));
  node.push_back(OrEmpty(s.udp, [](int64_t v) { return Count(v); }));
  return CsvRow(node);
}

std::string ProcessRows(const Sample& s, const std::vector<double>& worker_cpu,
                        const std::string& utc) {
  const auto count = [](int64_t v) { return Count(v); };
  std::string rows;
  for (size_t i = 0; i < s.workers.size(); ++i) {
    const WorkerReading& w = s.workers[i];
    rows += CsvRow({utc, Count(w.pid), w.name, Fixed2(worker_cpu[i]), OrEmpty(w.rss_mb, Fixed2),
                    OrEmpty(w.threads, count), OrEmpty(w.open_files, count)});
  }
  return rows;
}

std::string GpuRows(const std::vector<GpuReading>& gpus, const std::string& utc) {
  std::string rows;
  for (const GpuReading& g : gpus) {
    rows += CsvRow({utc, g.index, g.uuid, g.name, OrEmpty(g.utilization_percent, Fixed2),
                    OrEmpty(g.memory_used_mib, Fixed2), OrEmpty(g.memory_total_mib, Fixed2),
                    OrEmpty(g.temperature_c, Fixed2), OrEmpty(g.power_w, Fixed2)});
  }
  return rows;
}

// The workers' GPU memory: nvidia-smi lists every process on the GPUs; the
// workers' are written.
std::string GpuProcessRows(const std::vector<GpuProcessReading>& apps,
                           const std::vector<std::pair<pid_t, std::string>>& workers,
                           const std::string& utc) {
  std::string rows;
  for (const GpuProcessReading& a : apps) {
    for (const auto& [pid, name] : workers) {
      if (pid != a.pid) continue;
      rows += CsvRow({utc, Count(a.pid), name, a.gpu_uuid, OrEmpty(a.used_memory_mib, Fixed2)});
    }
  }
  return rows;
}

std::string DiskRows(const Sample& s, const std::string& utc) {
  std::string rows;
  for (const MountReading& m : s.mounts) {
    rows +=
        CsvRow({utc, m.mount_point, m.device, Mb(m.total_bytes), Mb(m.used_bytes), Mb(m.free_bytes),
                // Of the space users can have, as df and psutil count it.
                Percent(static_cast<double>(m.used_bytes),
                        static_cast<double>(m.used_bytes + m.free_bytes))});
  }
  return rows;
}

// os/%Y%m%d%H/processes_%M under `dir`.
absl::Status WriteListing(const std::string& dir, absl::Time now, const std::string& listing) {
  const std::string listing_dir =
      absl::StrCat(dir, "/os/", absl::FormatTime("%Y%m%d%H", now, absl::UTCTimeZone()));
  if (absl::Status made = MakeDirs(listing_dir); !made.ok()) return made;
  return WriteFileAtomic(
      absl::StrCat(listing_dir, "/processes_", absl::FormatTime("%M", now, absl::UTCTimeZone())),
      listing);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ResourceMonitor>> ResourceMonitor::Start(
    ResourceMonitorOptions options) {
  if (options.out_dir.empty()) {
    return absl::InvalidArgumentError(
        "resource monitor: out_dir is empty; give the folder for the usage CSV files");
  }
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("resource monitor: interval ",
                                                   absl::FormatDuration(options.interval),
                                                   " is not positive; use a period like 10s"));
  }
  if (absl::Status s = MakeDirs(options.out_dir); !s.ok()) return s;
  std::unique_ptr<ResourceMonitor> monitor(new ResourceMonitor(std::move(options)));
  try {
    monitor->thread_ = std::thread([m = monitor.get()] { m->Run(); });
  } catch (const std::system_error& e) {
    // Out of threads: the job runs without resource samples.
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the resource monitor's thread: ", e.what()));
  }
  return monitor;
}

ResourceMonitor::ResourceMonitor(ResourceMonitorOptions options) : options_(std::move(options)) {}

ResourceMonitor::~ResourceMonitor() { Stop(); }

void ResourceMonitor::Stop() {
  // call_once also makes concurrent callers wait until the first one has joined the thread.
  std::call_once(stop_once_, [this] {
    stop_.Notify();
    if (thread_.joinable()) thread_.join();
  });
}

void ResourceMonitor::Run() {
  // Ticks on the steady clock, so that a wall-clock step neither stalls nor floods sampling.
  const chrono::steady_clock::time_point start = chrono::steady_clock::now();
  absl::Duration next = absl::ZeroDuration();
  bool failing = false;
  while (!stop_.HasBeenNotified()) {
    absl::Status s = SampleOnce();
    if (!s.ok() && !failing) {
      spdlog::warn("resource monitor dir={}: {}; still sampling", options_.out_dir, s.ToString());
    } else if (s.ok() && failing) {
      spdlog::info("resource monitor dir={} writes again", options_.out_dir);
    }
    failing = !s.ok();
    const absl::Duration elapsed = absl::FromChrono(chrono::steady_clock::now() - start);
    next += options_.interval;
    if (next <= elapsed) next = elapsed + options_.interval;  // fell behind: skip missed ticks
    if (stop_.WaitForNotificationWithTimeout(next - elapsed)) break;
  }
}

absl::Status ResourceMonitor::SampleOnce(bool gpu_queries) {
  // Read everything first, holding no lock.
  std::vector<std::pair<pid_t, std::string>> workers;
  if (options_.workers) workers = options_.workers();
  const bool gpu = gpu_queries && !options_.gpus.empty();
  std::vector<GpuReading> gpus;
  std::vector<GpuProcessReading> gpu_apps;
  if (gpu) {
    gpus = OnlyThese(QueryGpus(), options_.gpus);
    gpu_apps = QueryComputeApps();
  }
  const std::vector<std::pair<pid_t, std::string>> gpu_workers =
      gpu ? workers : decltype(workers){};
  const Sample s = ReadSample(options_.clock->Now(), std::move(workers));
  std::optional<double> node_cpu;
  std::vector<double> worker_cpu;
  {
    absl::MutexLock lock(&mu_);
    node_cpu = NodeCpuPercentLocked(s.cpu);
    worker_cpu = WorkerCpuPercentsLocked(s.workers);
  }

  // Write, holding no lock.
  const std::string utc = absl::FormatTime("%Y-%m-%d %H:%M:%S", s.now, absl::UTCTimeZone());
  absl::Status first_error;
  auto note = [&first_error](absl::Status status) {
    if (first_error.ok() && !status.ok()) first_error = std::move(status);
  };
  if (!s.cpu || !s.memory) {
    note(absl::UnavailableError(
        "resource monitor: cannot read /proc/stat or /proc/meminfo; is /proc mounted?"));
  }
  const std::string& dir = options_.out_dir;
  note(MakeDirs(dir));
  note(AppendCsv(absl::StrCat(dir, "/", kNodeCsv), kNodeHeader, NodeRow(s, node_cpu, utc)));
  note(AppendCsv(absl::StrCat(dir, "/", kProcessesCsv), kProcessesHeader,
                 ProcessRows(s, worker_cpu, utc)));
  note(AppendCsv(absl::StrCat(dir, "/", kDiskCsv), kDiskHeader, DiskRows(s, utc)));
  if (gpu) {
    note(AppendCsv(absl::StrCat(dir, "/", kGpuCsv), kGpuHeader, GpuRows(gpus, utc)));
    note(AppendCsv(absl::StrCat(dir, "/", kGpuProcessesCsv), kGpuProcessesHeader,
                   GpuProcessRows(gpu_apps, gpu_workers, utc)));
  }
  note(WriteListing(dir, s.now, s.listing));
  return first_error;
}

// A reading no newer than the stored one (another thread sampled in between) or too close to it
// repeats the last percent.
std::optional<double> ResourceMonitor::NodeCpuPercentLocked(const std::optional<CpuReading>& cpu) {
  if (!cpu) return std::nullopt;
  const uint64_t min_span =
      static_cast<uint64_t>(kMinCpuSpanSeconds * static_cast<double>(TicksPerSecond()) * cpu->cpus);
  if (cpu->total > last_cpu_total_ && cpu->total - last_cpu_total_ >= min_span &&
      cpu->busy >= last_cpu_busy_) {
    last_cpu_percent_ = static_cast<double>(cpu->busy - last_cpu_busy_) * 100.0 /
                        static_cast<double>(cpu->total - last_cpu_total_);
    last_cpu_busy_ = cpu->busy;
    last_cpu_total_ = cpu->total;
  }
  return last_cpu_percent_;
}

std::vector<double> ResourceMonitor::WorkerCpuPercentsLocked(
    const std::vector<WorkerReading>& readings) {
  std::vector<double> worker_cpu(readings.size(), 0.0);
  std::map<pid_t, ProcessCpu> next;  // only the workers of this sample are kept
  for (size_t i = 0; i < readings.size(); ++i) {
    const WorkerReading& w = readings[i];
    ProcessCpu current{w.stat.start_ticks, w.stat.cpu_ticks, w.at, 0.0};
    auto it = last_process_cpu_.find(w.pid);
    if (it != last_process_cpu_.end() && it->second.start_ticks == w.stat.start_ticks) {
      const ProcessCpu& last = it->second;
      const double seconds = chrono::duration<double>(w.at - last.at).count();
      if (seconds >= kMinCpuSpanSeconds && w.stat.cpu_ticks >= last.cpu_ticks) {
        current.percent = static_cast<double>(w.stat.cpu_ticks - last.cpu_ticks) /
                          static_cast<double>(TicksPerSecond()) * 100.0 / seconds;
      } else {
        current = last;
      }
    }
    worker_cpu[i] = current.percent;
    next[w.pid] = current;
  }
  last_process_cpu_ = std::move(next);
  return worker_cpu;
}

}  // namespace prs::agent

#include "agent/resource_monitor.h"

#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
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
constexpr char kDiskCsv[] = "node_disk_usage.csv";
constexpr char kDiskHeader[] =
    "Utc Time,Mount Point,File System,Total (MB),Used (MB),Free (MB),Used Percent";
constexpr char kListingFormat[] = "%-7s %-7s %-10s %-5s %7s %10s %7s %-19s %s\n";

constexpr double kMiB = 1024.0 * 1024.0;
// /proc/diskstats counts 512-byte sectors whatever the device's own sector size.
constexpr uint64_t kSectorBytes = 512;
// A CPU percent over less time than this is mostly rounding of 10 ms ticks, so a sample that
// close to the previous one repeats the previous percent instead.
constexpr double kMinCpuSpanSeconds = 0.1;
constexpr size_t kMaxCommandChars = 4096;

// Filesystems that hold no user data: kernel interfaces, memory-backed and read-only images.
const std::set<std::string, std::less<>>& PseudoFilesystems() {
  static const auto* const kTypes = new std::set<std::string, std::less<>>{
      "autofs",     "binfmt_misc", "bpf",      "cgroup",   "cgroup2",    "configfs", "debugfs",
      "devfs",      "devpts",      "devtmpfs", "efivarfs", "fuse.lxcfs", "fusectl",  "hugetlbfs",
      "mqueue",     "nsfs",        "proc",     "pstore",   "ramfs",      "rootfs",   "rpc_pipefs",
      "securityfs", "selinuxfs",   "squashfs", "sysfs",    "tmpfs",      "tracefs"};
  return *kTypes;
}

// --- Reading /proc -------------------------------------------------------------------------

int64_t TicksPerSecond() {
  static const int64_t kHz = [] {
    const long hz = ::sysconf(_SC_CLK_TCK);
    return hz > 0 ? static_cast<int64_t>(hz) : 100;
  }();
  return kHz;
}

int64_t PageBytes() {
  static const int64_t kPage = [] {
    const long page = ::sysconf(_SC_PAGESIZE);
    return page > 0 ? static_cast<int64_t>(page) : 4096;
  }();
  return kPage;
}

std::optional<std::string> ReadProcFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok() || text->empty()) return std::nullopt;
  return *std::move(text);
}

uint64_t ToU64(absl::string_view s) {
  uint64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}

std::vector<absl::string_view> Fields(absl::string_view line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// The value of `key:` in a "Key:   value unit" file (/proc/meminfo, /proc/<pid>/status).
std::optional<uint64_t> KeyedValue(absl::string_view text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    std::vector<absl::string_view> f = Fields(line);
    uint64_t v = 0;
    if (!f.empty() && absl::SimpleAtoi(f[0], &v)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

struct CpuReading {
  uint64_t busy = 0;  // jiffies summed over all CPUs
  uint64_t total = 0;
  int cpus = 1;
  int64_t boot_time = 0;  // seconds since the epoch
};

std::optional<CpuReading> ReadCpu() {
  std::optional<std::string> text = ReadProcFile("/proc/stat");
  if (!text) return std::nullopt;
  CpuReading cpu;
  int cpus = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.empty()) continue;
    if (f[0] == "cpu" && f.size() >= 5) {
      // user nice system idle iowait irq softirq steal; guest and guest_nice are already
      // inside user and nice. Idle time includes iowait, as psutil counts it.
      uint64_t total = 0;
      for (size_t i = 1; i < f.size() && i <= 8; ++i) total += ToU64(f[i]);
      const uint64_t idle = ToU64(f[4]) + (f.size() > 5 ? ToU64(f[5]) : 0);
      cpu.total = total;
      cpu.busy = total >= idle ? total - idle : 0;
      found = true;
    } else if (absl::StartsWith(f[0], "cpu")) {
      ++cpus;
    } else if (f[0] == "btime" && f.size() >= 2) {
      cpu.boot_time = static_cast<int64_t>(ToU64(f[1]));
    }
  }
  if (!found) return std::nullopt;
  cpu.cpus = cpus > 0 ? cpus : 1;
  return cpu;
}

struct MemoryReading {
  uint64_t total_kb = 0;
  uint64_t available_kb = 0;
};

std::optional<MemoryReading> ReadMemory() {
  std::optional<std::string> text = ReadProcFile("/proc/meminfo");
  if (!text) return std::nullopt;
  std::optional<uint64_t> total = KeyedValue(*text, "MemTotal");
  if (!total || *total == 0) return std::nullopt;
  std::optional<uint64_t> available = KeyedValue(*text, "MemAvailable");
  if (!available) {  // kernels before 3.14
    available = KeyedValue(*text, "MemFree").value_or(0) +
                KeyedValue(*text, "Buffers").value_or(0) + KeyedValue(*text, "Cached").value_or(0);
  }
  return MemoryReading{*total, std::min(*available, *total)};
}

struct DiskIoReading {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};

// Whether the /proc/diskstats device `name` is a whole physical disk. Partitions would count
// their disk's I/O twice, and loop, ram, zram, device-mapper and md devices count I/O that
// either never reaches a disk or is counted again on the disks beneath them.
bool IsWholeDisk(const std::string& name, const std::vector<std::string>& all, bool have_sys) {
  for (absl::string_view skip : {"loop", "ram", "zram", "dm-", "md"}) {
    if (absl::StartsWith(name, skip)) return false;
  }
  if (have_sys) {
    // /sys/block lists whole disks only; a '/' in a device name appears there as '!'.
    const std::string sys = absl::StrCat("/sys/block/", absl::StrReplaceAll(name, {{"/", "!"}}));
    return ::access(sys.c_str(), F_OK) == 0;
  }
  // Without sysfs: a partition's name extends its disk's (sda1, nvme0n1p1, mmcblk0p1).
  for (const std::string& other : all) {
    if (other != name && absl::StartsWith(name, other)) return false;
  }
  return true;
}

std::optional<DiskIoReading> ReadDiskIo() {
  std::optional<std::string> text = ReadProcFile("/proc/diskstats");
  if (!text) return std::nullopt;
  std::vector<std::vector<absl::string_view>> rows;
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.size() < 10) continue;
    names.emplace_back(f[2]);
    rows.push_back(std::move(f));
  }
  const bool have_sys = ::access("/sys/block", F_OK) == 0;
  DiskIoReading io;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!IsWholeDisk(names[i], names, have_sys)) continue;
    const std::vector<absl::string_view>& f = rows[i];
    io.reads += ToU64(f[3]);
    io.read_bytes += ToU64(f[5]) * kSectorBytes;
    io.writes += ToU64(f[7]);
    io.write_bytes += ToU64(f[9]) * kSectorBytes;
  }
  return io;
}

struct NetworkReading {
  uint64_t sent_bytes = 0;
  uint64_t received_bytes = 0;
};

// Summed over every interface but lo, as in /proc/net/dev of this network namespace.
std::optional<NetworkReading> ReadNetwork() {
  std::optional<std::string> text = ReadProcFile("/proc/net/dev");
  if (!text) return std::nullopt;
  NetworkReading net;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;  // the two header lines
    if (absl::StripAsciiWhitespace(line.substr(0, colon)) == "lo") continue;
    // rx: bytes packets errs drop fifo frame compressed multicast; then tx: bytes ...
    std::vector<absl::string_view> f = Fields(line.substr(colon + 1));
    if (f.size() < 9) continue;
    net.received_bytes += ToU64(f[0]);
    net.sent_bytes += ToU64(f[8]);
  }
  return net;
}

// Sockets in /proc/net/<proto> and <proto>6: one line each after a header. Empty when neither
// file can be read.
std::optional<int64_t> CountSockets(absl::string_view proto) {
  std::optional<int64_t> count;
  for (const std::string& path :
       {absl::StrCat("/proc/net/", proto), absl::StrCat("/proc/net/", proto, "6")}) {
    std::optional<std::string> text = ReadProcFile(path);
    if (!text) continue;
    int64_t lines = 0;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
      (void)line;
      ++lines;
    }
    count = count.value_or(0) + std::max<int64_t>(lines - 1, 0);
  }
  return count;
}

// /proc/<pid>/stat, whose second field "(comm)" may itself hold spaces and parentheses.
struct ProcStat {
  std::string comm;
  char state = '?';
  int64_t ppid = 0;
  uint64_t cpu_ticks = 0;  // utime + stime
  int64_t threads = 0;
  uint64_t start_ticks = 0;
  uint64_t rss_pages = 0;
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::optional<std::string> text = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text) return std::nullopt;
  const size_t open = text->find('(');
  const size_t close = text->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  // After ")": field 3 (state) is f[0], so field N is f[N - 3].
  std::vector<absl::string_view> f = Fields(absl::string_view(*text).substr(close + 1));
  if (f.size() < 22 || f[0].empty()) return std::nullopt;
  ProcStat st;
  st.comm = text->substr(open + 1, close - open - 1);
  st.state = f[0][0];
  st.ppid = static_cast<int64_t>(ToU64(f[1]));
  st.cpu_ticks = ToU64(f[11]) + ToU64(f[12]);
  st.threads = static_cast<int64_t>(ToU64(f[17]));
  st.start_ticks = ToU64(f[19]);
  st.rss_pages = ToU64(f[21]);
  return st;
}

// Entries in /proc/<pid>/fd. NOT_FOUND when the process has gone.
absl::StatusOr<int64_t> CountOpenFiles(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/fd");
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot list ", path));
  int64_t count = 0;
  while (const struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

struct WorkerReading {
  pid_t pid = 0;
  std::string name;
  ProcStat stat;
  chrono::steady_clock::time_point at;
  std::optional<double> rss_mb;
  std::optional<int64_t> threads;
  std::optional<int64_t> open_files;
};

// Empty when the process has gone (or never was).
std::optional<WorkerReading> ReadWorker(pid_t pid, std::string name) {
  std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat) return std::nullopt;
  WorkerReading w;
  w.at = chrono::steady_clock::now();
  w.pid = pid;
  w.name = std::move(name);
  w.stat = *std::move(stat);
  std::optional<std::string> status = ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return std::nullopt;
  // A zombie has no VmRSS line: it holds no memory.
  w.rss_mb = static_cast<double>(KeyedValue(*status, "VmRSS").value_or(0)) / 1024.0;
  w.threads = KeyedValue(*status, "Threads");
  absl::StatusOr<int64_t> open_files = CountOpenFiles(pid);
  if (absl::IsNotFound(open_files.status())) return std::nullopt;
  if (open_files.ok()) w.open_files = *open_files;
  return w;
}

struct MountReading {
  std::string mount_point;
  std::string device;
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;  // available to unprivileged users, as df shows
};

// /proc/mounts writes space, tab, newline and backslash in paths as \ooo.
std::string UnescapeMountField(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<MountReading> ReadMounts() {
  std::vector<MountReading> mounts;
  std::optional<std::string> text = ReadProcFile("/proc/mounts");
  if (!text) return mounts;
  std::set<std::string> seen_points;
  std::set<dev_t> seen_devices;  // a bind mount or a second mount of one filesystem
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.size() < 3 || PseudoFilesystems().count(f[2]) > 0) continue;
    MountReading m;
    m.device = UnescapeMountField(f[0]);
    m.mount_point = UnescapeMountField(f[1]);
    if (!seen_points.insert(m.mount_point).second) continue;
    struct stat st;
    struct statvfs vfs;
    if (::stat(m.mount_point.c_str(), &st) != 0 || ::statvfs(m.mount_point.c_str(), &vfs) != 0) {
      continue;
    }
    if (vfs.f_blocks == 0 || !seen_devices.insert(st.st_dev).second) continue;
    const uint64_t unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
    m.total_bytes = static_cast<uint64_t>(vfs.f_blocks) * unit;
    m.used_bytes = static_cast<uint64_t>(vfs.f_blocks - std::min(vfs.f_bfree, vfs.f_blocks)) * unit;
    m.free_bytes = static_cast<uint64_t>(vfs.f_bavail) * unit;
    mounts.push_back(std::move(m));
  }
  return mounts;
}

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

std::string UserName(uid_t uid, std::map<uid_t, std::string>& cache) {
  auto it = cache.find(uid);
  if (it != cache.end()) return it->second;
  std::string name = absl::StrCat(uid);
  struct passwd pw;
  struct passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr) {
    name = result->pw_name;
  }
  if (name.size() > 10) name = absl::StrCat(name.substr(0, 9), "+");  // as ps does
  cache.emplace(uid, name);
  return name;
}

std::string CommandLine(pid_t pid, const ProcStat& st) {
  std::string cmd = ReadProcFile(absl::StrCat("/proc/", pid, "/cmdline")).value_or("");
  if (cmd.size() > kMaxCommandChars) cmd.resize(kMaxCommandChars);
  for (char& c : cmd) {
    if (c == '\0') {
      c = ' ';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  absl::StripTrailingAsciiWhitespace(&cmd);
  // Kernel threads and zombies have no command line; ps shows their name in brackets.
  return cmd.empty() ? absl::StrCat("[", st.comm, "]") : cmd;
}

// A ps-like listing of every process. %CPU is the process's CPU time over its lifetime (as ps
// computes it), not over the last interval, so it needs no state between samples.
std::string ProcessListing(const std::optional<CpuReading>& cpu) {
  std::string out = absl::StrFormat(kListingFormat, "PID", "PPID", "USER", "STATE", "%CPU",
                                    "RSS_MB", "THREADS", "START", "COMMAND");
  double uptime = 0;
  if (std::optional<std::string> text = ReadProcFile("/proc/uptime")) {
    std::vector<absl::string_view> f = Fields(*text);
    if (!f.empty() && !absl::SimpleAtod(f[0], &uptime)) uptime = 0;
  }
  const double hz = static_cast<double>(TicksPerSecond());
  std::map<uid_t, std::string> users;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  std::vector<pid_t> pids;
  while (const struct dirent* e = ::readdir(dir)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(dir);
  std::sort(pids.begin(), pids.end());
  for (pid_t pid : pids) {
    std::optional<ProcStat> st = ReadProcStat(pid);
    struct stat owner;
    if (!st || ::stat(absl::StrCat("/proc/", pid).c_str(), &owner) != 0) continue;  // gone
    const double started = static_cast<double>(st->start_ticks) / hz;
    const double lifetime = uptime - started;
    const double cpu_percent =
        lifetime > 0 ? static_cast<double>(st->cpu_ticks) / hz * 100.0 / lifetime : 0.0;
    std::string start = "-";
    if (cpu && cpu->boot_time > 0) {
      start =
          absl::FormatTime("%Y-%m-%dT%H:%M:%S",
                           absl::FromUnixSeconds(cpu->boot_time + static_cast<int64_t>(started)),
                           absl::UTCTimeZone());
    }
    const double rss_mb = static_cast<double>(st->rss_pages * PageBytes()) / kMiB;
    absl::StrAppendFormat(&out, kListingFormat, absl::StrCat(pid), absl::StrCat(st->ppid),
                          UserName(owner.st_uid, users), std::string(1, st->state),
                          Fixed2(cpu_percent), Fixed2(rss_mb), absl::StrCat(st->threads), start,
                          CommandLine(pid, *st));
  }
  return out;
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

absl::Status ResourceMonitor::SampleOnce() {
  // Read everything first, holding no lock.
  const absl::Time now = absl::Now();
  std::vector<std::pair<pid_t, std::string>> workers;
  if (options_.workers) workers = options_.workers();
  const std::optional<CpuReading> cpu = ReadCpu();
  const std::optional<MemoryReading> memory = ReadMemory();
  // Disk I/O and network counters are cumulative since boot, as psutil reports them; a reader
  // takes differences between rows.
  const std::optional<DiskIoReading> disk_io = ReadDiskIo();
  const std::optional<NetworkReading> network = ReadNetwork();
  const std::optional<int64_t> tcp = CountSockets("tcp");
  const std::optional<int64_t> udp = CountSockets("udp");
  std::vector<WorkerReading> readings;
  for (auto& [pid, name] : workers) {
    if (std::optional<WorkerReading> w = ReadWorker(pid, std::move(name))) {
      readings.push_back(*std::move(w));
    }
  }
  const std::vector<MountReading> mounts = ReadMounts();
  const std::string listing = ProcessListing(cpu);

  // CPU percents against the previous sample. A reading no newer than the stored one (another
  // thread sampled in between) or too close to it repeats the last percent.
  std::optional<double> node_cpu;
  std::vector<double> worker_cpu(readings.size(), 0.0);
  {
    absl::MutexLock lock(&mu_);
    if (cpu) {
      const uint64_t min_span = static_cast<uint64_t>(
          kMinCpuSpanSeconds * static_cast<double>(TicksPerSecond()) * cpu->cpus);
      if (cpu->total > last_cpu_total_ && cpu->total - last_cpu_total_ >= min_span &&
          cpu->busy >= last_cpu_busy_) {
        last_cpu_percent_ = static_cast<double>(cpu->busy - last_cpu_busy_) * 100.0 /
                            static_cast<double>(cpu->total - last_cpu_total_);
        last_cpu_busy_ = cpu->busy;
        last_cpu_total_ = cpu->total;
      }
      node_cpu = last_cpu_percent_;
    }
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
  }

  // Write, holding no lock.
  const std::string utc = absl::FormatTime("%Y-%m-%d %H:%M:%S", now, absl::UTCTimeZone());
  absl::Status first_error;
  auto note = [&first_error](absl::Status s) {
    if (first_error.ok() && !s.ok()) first_error = std::move(s);
  };
  if (!cpu || !memory) {
    note(absl::UnavailableError(
        "resource monitor: cannot read /proc/stat or /proc/meminfo; is /proc mounted?"));
  }
  note(MakeDirs(options_.out_dir));
  const std::string dir = options_.out_dir;

  const auto mb_kb = [](uint64_t kb) { return Fixed2(static_cast<double>(kb) / 1024.0); };
  const auto count = [](auto v) { return absl::StrCat(v); };
  std::vector<std::string> node = {utc, OrEmpty(node_cpu, Fixed2)};
  if (memory) {
    // Used is what is not available, which is also what the percent measures.
    const uint64_t used_kb = memory->total_kb - memory->available_kb;
    node.insert(node.end(),
                {mb_kb(memory->total_kb), mb_kb(memory->available_kb), mb_kb(used_kb),
                 Percent(static_cast<double>(used_kb), static_cast<double>(memory->total_kb))});
  } else {
    node.insert(node.end(), 4, "");
  }
  if (disk_io) {
    node.insert(node.end(), {count(disk_io->reads), count(disk_io->writes), Mb(disk_io->read_bytes),
                             Mb(disk_io->write_bytes)});
  } else {
    node.insert(node.end(), 4, "");
  }
  node.push_back(OrEmpty(network, [](const NetworkReading& n) { return Mb(n.sent_bytes); }));
  node.push_back(OrEmpty(network, [](const NetworkReading& n) { return Mb(n.received_bytes); }));
  node.push_back(OrEmpty(tcp, count));
  node.push_back(OrEmpty(udp, count));
  note(AppendCsv(absl::StrCat(dir, "/", kNodeCsv), kNodeHeader, CsvRow(node)));

  std::string process_rows;
  for (size_t i = 0; i < readings.size(); ++i) {
    const WorkerReading& w = readings[i];
    process_rows +=
        CsvRow({utc, count(w.pid), w.name, Fixed2(worker_cpu[i]), OrEmpty(w.rss_mb, Fixed2),
                OrEmpty(w.threads, count), OrEmpty(w.open_files, count)});
  }
  note(AppendCsv(absl::StrCat(dir, "/", kProcessesCsv), kProcessesHeader, process_rows));

  std::string disk_rows;
  for (const MountReading& m : mounts) {
    disk_rows +=
        CsvRow({utc, m.mount_point, m.device, Mb(m.total_bytes), Mb(m.used_bytes), Mb(m.free_bytes),
                // Of the space users can have, as df and psutil count it.
                Percent(static_cast<double>(m.used_bytes),
                        static_cast<double>(m.used_bytes + m.free_bytes))});
  }
  note(AppendCsv(absl::StrCat(dir, "/", kDiskCsv), kDiskHeader, disk_rows));

  const std::string listing_dir =
      absl::StrCat(dir, "/os/", absl::FormatTime("%Y%m%d%H", now, absl::UTCTimeZone()));
  absl::Status made = MakeDirs(listing_dir);
  note(made);
  if (made.ok()) {
    note(WriteFileAtomic(
        absl::StrCat(listing_dir, "/processes_", absl::FormatTime("%M", now, absl::UTCTimeZone())),
        listing));
  }
  return first_error;
}

}  // namespace prs::agent

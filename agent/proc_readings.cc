#include "agent/proc_readings.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/file_io.h"

namespace prs::agent {
namespace {

constexpr char kListingFormat[] = "%-7s %-7s %-10s %-5s %7s %10s %7s %-19s %s\n";

constexpr double kMiB = 1024.0 * 1024.0;
// /proc/diskstats counts 512-byte sectors whatever the device's own sector size.
constexpr uint64_t kSectorBytes = 512;
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

std::string Fixed2(double v) { return absl::StrFormat("%.2f", v); }

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

}  // namespace

int64_t TicksPerSecond() {
  static const int64_t kHz = [] {
    const long hz = ::sysconf(_SC_CLK_TCK);
    return hz > 0 ? static_cast<int64_t>(hz) : 100;
  }();
  return kHz;
}

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

std::optional<WorkerReading> ReadWorker(pid_t pid, std::string name) {
  std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat) return std::nullopt;
  WorkerReading w;
  w.at = std::chrono::steady_clock::now();
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

}  // namespace prs::agent

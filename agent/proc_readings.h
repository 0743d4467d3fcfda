#ifndef PRS_AGENT_PROC_READINGS_H_
#define PRS_AGENT_PROC_READINGS_H_

// What the resource monitor reads from /proc and the file systems: the node's
// CPU, memory, disk I/O, network and sockets, one worker's process, the
// mounted file systems, and a ps-like listing of every process. Each reader
// returns what it could read, and nothing (or an empty field) for a source
// it could not; none keeps state between calls.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace prs::agent {

// Clock ticks per second of /proc's times (sysconf(_SC_CLK_TCK)).
int64_t TicksPerSecond();

struct CpuReading {
  uint64_t busy = 0;  // jiffies summed over all CPUs
  uint64_t total = 0;
  int cpus = 1;
  int64_t boot_time = 0;  // seconds since the epoch
};

// Aggregate CPU jiffies, CPU count and boot time from /proc/stat.
std::optional<CpuReading> ReadCpu();

struct MemoryReading {
  uint64_t total_kb = 0;
  uint64_t available_kb = 0;
};
// From /proc/meminfo; MemAvailable, or its estimate on kernels before 3.14.
std::optional<MemoryReading> ReadMemory();

struct DiskIoReading {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};

// Whether the /proc/diskstats device `name` is a whole physical disk. Partitions would count
// their disk's I/O twice, and loop, ram, zram, device-mapper and md devices count I/O that
bool IsWholeDisk(const std::string& name, const std::vector<std::string>& all, bool have_sys);
// Summed over the whole physical disks of /proc/diskstats.
std::optional<DiskIoReading> ReadDiskIo();

struct NetworkReading {
  uint64_t sent_bytes = 0;
  uint64_t received_bytes = 0;
};

// Summed over every interface but lo, as in /proc/net/dev of this network namespace.
std::optional<NetworkReading> ReadNetwork();

// Sockets in /proc/net/<proto> and <proto>6: one line each after a header. Empty when neither
// file can be read.
std::optional<int64_t> CountSockets(absl::string_view proto);

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
std::optional<ProcStat> ReadProcStat(pid_t pid);

struct WorkerReading {
  pid_t pid = 0;
  std::string name;
  ProcStat stat;
  // When it was read, on the steady clock: CPU percents are over the time
  // between two readings, which a wall-clock step must not distort.
  std::chrono::steady_clock::time_point at;
  std::optional<double> rss_mb;
  std::optional<int64_t> threads;
  std::optional<int64_t> open_files;
};
// Empty when the process has gone (or never was).
std::optional<WorkerReading> ReadWorker(pid_t pid, std::string name);

struct MountReading {
  std::string mount_point;
  std::string device;
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;  // available to unprivileged users, as df shows
};

// /proc/mounts writes space, tab, newline and backslash in paths as \ooo.
std::string UnescapeMountField(absl::string_view s);
// The mounted file systems that hold data, each once (by mount point and by
// device), with their sizes as df shows them.
std::vector<MountReading> ReadMounts();

// A ps-like listing of every process. %CPU is the process's CPU time over its lifetime (as ps
// computes it), not over the last interval, so it needs no state between samples. `cpu` gives
// the boot time for the START column.
std::string ProcessListing(const std::optional<CpuReading>& cpu);

}  // namespace prs::agent

#endif  // PRS_AGENT_PROC_READINGS_H_

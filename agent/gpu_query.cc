#include "agent/gpu_query.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace prs::agent {
namespace {

constexpr std::chrono::seconds kQueryTimeout{5};

std::vector<std::string> Fields(absl::string_view line) {
  std::vector<std::string> fields;
  for (absl::string_view f : absl::StrSplit(line, ',')) {
    fields.emplace_back(absl::StripAsciiWhitespace(f));
  }
  return fields;
}

// "[N/A]", "[Not Supported]" and anything else that is no number: empty.
std::optional<double> Number(const std::string& text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) return std::nullopt;
  return value;
}

// Up to 1 MiB of what `nvidia-smi ARG1 ARG2` prints; empty when it cannot
// run, fails, or takes longer than kQueryTimeout (a GPU in trouble can hang
// it): it is then killed, and the caller goes on without the reading.
std::string Run(const char* arg1, const char* arg2) {
  std::string out;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return out;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return out;
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 2);
    }
    ::execlp("nvidia-smi", "nvidia-smi", arg1, arg2, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + kQueryTimeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) continue;  // EINTR or the deadline, checked above
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (1u << 20)) out.append(buf, static_cast<size_t>(n));  // drained either way
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) out.clear();
  return out;
}

// 80123 -> "80,123".
std::string Thousands(double mib) {
  std::string digits = absl::StrCat(static_cast<int64_t>(mib + 0.5));
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

}  // namespace

std::vector<GpuReading> ParseGpuCsv(absl::string_view text) {
  std::vector<GpuReading> gpus;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    const std::vector<std::string> f = Fields(line);
    if (f.size() != 8 || f[0].empty() || !Number(f[0])) continue;
    GpuReading g;
    g.index = f[0];
    g.uuid = f[1];
    g.name = f[2];
    g.utilization_percent = Number(f[3]);
    g.memory_used_mib = Number(f[4]);
    g.memory_total_mib = Number(f[5]);
    g.temperature_c = Number(f[6]);
    g.power_w = Number(f[7]);
    gpus.push_back(std::move(g));
  }
  return gpus;
}

std::vector<GpuProcessReading> ParseComputeAppsCsv(absl::string_view text) {
  std::vector<GpuProcessReading> apps;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    const std::vector<std::string> f = Fields(line);
    int64_t pid = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &pid) || pid <= 0) continue;
    apps.push_back(GpuProcessReading{static_cast<pid_t>(pid), f[1], Number(f[2])});
  }
  return apps;
}

std::vector<GpuReading> QueryGpus() {
  return ParseGpuCsv(Run(kGpuQuery, "--format=csv,noheader,nounits"));
}

std::vector<GpuProcessReading> QueryComputeApps() {
  return ParseComputeAppsCsv(Run(kComputeAppsQuery, "--format=csv,noheader,nounits"));
}

std::vector<GpuReading> OnlyThese(std::vector<GpuReading> readings,
                                  const std::vector<std::string>& gpus) {
  std::vector<GpuReading> kept;
  for (auto& r : readings) {
    for (const std::string& g : gpus) {
      if (r.index == g || r.uuid == g) {
        kept.push_back(std::move(r));
        break;
      }
    }
  }
  return kept;
}

bool IsCudaOutOfMemory(absl::string_view error) {
  for (absl::string_view mark :
       {"CUDA out of memory", "OutOfMemoryError", "CUDA_ERROR_OUT_OF_MEMORY",
        "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED", "cudaErrorMemoryAllocation"}) {
    if (absl::StrContains(error, mark)) return true;
  }
  return false;
}

std::string GpuMemoryNow(const std::vector<std::string>& gpus,
                         const std::vector<GpuReading>& readings) {
  std::string out;
  for (const std::string& gpu : gpus) {
    for (const GpuReading& r : readings) {
      if (r.index != gpu && r.uuid != gpu) continue;
      absl::StrAppend(&out, out.empty() ? "" : "; ", "GPU ", r.index, ": ");
      if (r.memory_used_mib && r.memory_total_mib) {
        absl::StrAppend(&out, Thousands(*r.memory_used_mib), " of ", Thousands(*r.memory_total_mib),
                        " MiB used");
      } else {
        absl::StrAppend(&out, "memory unknown");
      }
    }
  }
  return out;
}

}  // namespace prs::agent

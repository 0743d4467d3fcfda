#include "agent/resource_monitor.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
#include "tests/unit/test_util.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace prs::agent {
namespace {

namespace fs = std::filesystem;

using prs::testing::TempDir;

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> SplitCsv(const std::string& line) { return absl::StrSplit(line, ','); }

// The CSV at `path`: checks the header is exactly `header` and returns the data rows, split.
std::vector<std::vector<std::string>> ReadCsv(const fs::path& path, const std::string& header) {
  INFO(path.string());
  REQUIRE(fs::exists(path));
  std::vector<std::string> lines = ReadLines(path);
  REQUIRE(!lines.empty());
  CHECK(lines[0] == header);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 1; i < lines.size(); ++i) rows.push_back(SplitCsv(lines[i]));
  return rows;
}

TEST_CASE("ResourceMonitor writes node, process, disk and os listings", "[resource_monitor]") {
  TempDir dir;
  const fs::path out = dir.path() / "perf" / "node0";  // created by Start
  const pid_t self = ::getpid();

  ResourceMonitorOptions options;
  options.out_dir = out.string();
  options.interval = absl::Seconds(1);
  options.workers = [self] {
    return std::vector<std::pair<pid_t, std::string>>{{self, "process000"}};
  };
  absl::StatusOr<std::unique_ptr<ResourceMonitor>> monitor =
      ResourceMonitor::Start(std::move(options));
  REQUIRE(monitor.ok());
  REQUIRE((*monitor)->SampleOnce().ok());
  REQUIRE((*monitor)->SampleOnce().ok());

  const std::string node_header =
      "Utc Time,Cpu Percent,Memory Total (MB),Memory Available (MB),Memory Used (MB),"
      "Memory Used Percent,Disk Io Read Count,Disk Io Write Count,Disk Io Read (MB),"
      "Disk Io Write (MB),Network Sent (MB),Network Recv (MB),# of TCP Connections,"
      "# of UDP Connections";
  const auto node = ReadCsv(out / "node_resource_usage.csv", node_header);
  REQUIRE(node.size() >= 2);
  for (const auto& row : node) {
    REQUIRE(row.size() == SplitCsv(node_header).size());
    double memory_total = 0;
    CHECK(absl::SimpleAtod(row[2], &memory_total));
    CHECK(memory_total > 0);
    CHECK(row[0].size() == std::string("2024-01-02 03:04:05").size());
  }

  const std::string processes_header =
      "Utc Time,Pid,Process Name,Cpu Percent,Rss (MB),Threads,Open Files";
  const auto processes = ReadCsv(out / "processes_resource_usage.csv", processes_header);
  int ours = 0;
  for (const auto& row : processes) {
    REQUIRE(row.size() == SplitCsv(processes_header).size());
    if (row[1] != absl::StrCat(self)) continue;
    ++ours;
    CHECK(row[2] == "process000");
    int threads = 0;
    CHECK(absl::SimpleAtoi(row[5], &threads));
    CHECK(threads >= 1);
    int open_files = 0;
    CHECK(absl::SimpleAtoi(row[6], &open_files));
    CHECK(open_files >= 1);
  }
  CHECK(ours >= 2);

  const std::string disk_header =
      "Utc Time,Mount Point,File System,Total (MB),Used (MB),Free (MB),Used Percent";
  const auto disks = ReadCsv(out / "node_disk_usage.csv", disk_header);
  REQUIRE(!disks.empty());
  for (const auto& row : disks) REQUIRE(row.size() == SplitCsv(disk_header).size());

  // os/<hour>/processes_<minute>: a header, then a line for this process.
  std::vector<fs::path> listings;
  for (const auto& e : fs::recursive_directory_iterator(out / "os")) {
    if (e.is_regular_file() && e.path().filename().string().rfind("processes_", 0) == 0) {
      listings.push_back(e.path());
    }
  }
  REQUIRE(!listings.empty());
  bool found_self = false;
  for (const fs::path& listing : listings) {
    std::vector<std::string> lines = ReadLines(listing);
    REQUIRE(!lines.empty());
    std::vector<std::string> header = absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
    CHECK(header == std::vector<std::string>{"PID", "PPID", "USER", "STATE", "%CPU", "RSS_MB",
                                             "THREADS", "START", "COMMAND"});
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ' ', absl::SkipEmpty());
      if (!f.empty() && f[0] == absl::StrCat(self)) found_self = true;
    }
  }
  CHECK(found_self);

  const auto stop_start = std::chrono::steady_clock::now();
  (*monitor)->Stop();
  const double stop_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_start).count();
  INFO("Stop() took " << stop_seconds << " s");
  SUCCEED("Stop() returned");
  (*monitor)->Stop();  // idempotent
}

TEST_CASE("ResourceMonitor rejects bad options", "[resource_monitor]") {
  ResourceMonitorOptions options;
  options.interval = absl::Seconds(1);
  CHECK(absl::IsInvalidArgument(ResourceMonitor::Start(options).status()));
  TempDir dir;
  options.out_dir = dir.path().string();
  options.interval = absl::ZeroDuration();
  CHECK(absl::IsInvalidArgument(ResourceMonitor::Start(options).status()));
}

TEST_CASE("ResourceMonitor skips a worker that has gone", "[resource_monitor]") {
  TempDir dir;
  ResourceMonitorOptions options;
  options.out_dir = dir.path().string();
  options.interval = absl::Hours(1);
  // pid_max is at most 2^22, so this pid never exists.
  options.workers = [] {
    return std::vector<std::pair<pid_t, std::string>>{{(1 << 22) + 1, "process001"}};
  };
  absl::StatusOr<std::unique_ptr<ResourceMonitor>> monitor =
      ResourceMonitor::Start(std::move(options));
  REQUIRE(monitor.ok());
  REQUIRE((*monitor)->SampleOnce().ok());
  (*monitor)->Stop();
  const auto rows = ReadCsv(dir.path() / "processes_resource_usage.csv",
                            "Utc Time,Pid,Process Name,Cpu Percent,Rss (MB),Threads,Open Files");
  CHECK(rows.empty());
}

}  // namespace
}  // namespace prs::agent

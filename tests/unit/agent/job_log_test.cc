#include "agent/job_log.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/unit/test_util.h"

namespace prs::agent {
namespace {

using prs::testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("ParseLogLevel reads the job's logging_level", "[job_log]") {
  CHECK(ParseLogLevel("DEBUG") == LogLevel::kDebug);
  CHECK(ParseLogLevel("INFO") == LogLevel::kInfo);
  CHECK(ParseLogLevel("WARNING") == LogLevel::kWarning);
  CHECK(ParseLogLevel("") == LogLevel::kInfo);
}

TEST_CASE("JobLog writes node records at or above the job's level", "[job_log]") {
  TempDir dir;
  FakeClock clock(absl::FromUnixMillis(1'700'000'000'123));
  LogAppender appender;
  JobLog log(dir.Sub("logs"), "node-a", LogLevel::kInfo, &appender, &clock);
  log.Node("agent.txt", LogLevel::kDebug, "not written");
  log.Node("agent.txt", LogLevel::kInfo, "worker started");
  clock.Advance(absl::Seconds(1));
  log.Node("agent.txt", LogLevel::kWarning, "worker failed");
  const std::string text = ReadAll(dir.Sub("logs/sys/node/node-a/agent.txt"));
  const std::string pid = absl::StrCat(::getpid());
  CHECK(text == absl::StrCat("2023-11-14 22:13:20.123|INFO|", pid, "|worker started\n",
                             "2023-11-14 22:13:21.123|WARNING|", pid, "|worker failed\n"));
}

TEST_CASE("JobLog records a failed attempt with its inputs and traceback", "[job_log]") {
  TempDir dir;
  FakeClock clock;
  LogAppender appender;
  JobLog log(dir.Sub("logs"), "node-a", LogLevel::kInfo, &appender, &clock);
  v1::Task task;
  task.add_items("/data/a.txt");
  task.add_items("/data/b.txt");
  v1::TaskResult r;
  r.set_task_id(4);
  r.set_status(v1::RUN_EXCEPTION);
  r.set_process_name("process002");
  r.set_error("ValueError: bad row");
  r.set_error_detail("Traceback (most recent call last):\n  ...");
  log.Error(task, r);
  CHECK(ReadAll(dir.Sub("logs/user/error/node-a/process002.txt")) ==
        "2023-11-14 22:13:20 UTC mini-batch 4 RUN_EXCEPTION: ValueError: bad row\n"
        "inputs:\n  /data/a.txt\n  /data/b.txt\n"
        "Traceback (most recent call last):\n  ...\n\n");
}

}  // namespace
}  // namespace prs::agent

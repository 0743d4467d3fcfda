#include "master/log_store.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("shipped log paths must stay in the agents' part of the tree") {
  for (const char* ok : {"user/stdout/n1/process000.stdout.txt", "sys/node/n1/agent.txt",
                         "perf/n1/os/2026112607/processes_45"}) {
    CHECK(ValidateShippedLogPath(ok).ok());
  }
  for (const char* bad : {"../x", "/etc/passwd", "user/../../x", "user//x", "user/./x",
                          "job_result.txt", "sys/master_role.txt", ""}) {
    auto s = ValidateShippedLogPath(bad);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Catch::Contains("log path"));
  }
  CHECK(ValidateReadLogPath("job_result.txt").ok());
  CHECK_FALSE(ValidateReadLogPath("../state.db").ok());
}

TEST_CASE("appends are idempotent by offset, so a resend after a reconnect adds nothing twice") {
  prs::testing::TempDir dir;
  LogStore store;
  const std::string path = "user/stdout/n1/p.txt";
  CHECK(*store.Append(dir.path().string(), path, 0, "hello ") == 6);
  CHECK(*store.Append(dir.path().string(), path, 0, "hello ") == 6);       // all known: nothing
  CHECK(*store.Append(dir.path().string(), path, 3, "lo world\n") == 12);  // overlap: the new part
  CHECK(*store.Append(dir.path().string(), path, 20, "ahead") == 12);      // a gap: resend from 12
  CHECK(Slurp(dir.Sub(path)) == "hello world\n");
  CHECK(*store.Replace(dir.path().string(), "perf/n1/os/x", "listing 1") == 9);
  CHECK(*store.Replace(dir.path().string(), "perf/n1/os/x", "two") == 3);
  CHECK(Slurp(dir.Sub("perf/n1/os/x")) == "two");
  CHECK(store.Append(dir.path().string(), "../escape", 0, "x").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("reading a log file returns a bounded piece and the size") {
  prs::testing::TempDir dir;
  dir.Write("job_result.txt", "SUCCEEDED\n");
  int64_t size = 0;
  auto piece = LogStore::Read(dir.path().string(), "job_result.txt", 2, 4, &size);
  REQUIRE(piece.ok());
  CHECK(*piece == "CCEE");
  CHECK(size == 10);
  CHECK(LogStore::Read(dir.path().string(), "nope.txt", 0, 10, &size).status().code() ==
        absl::StatusCode::kNotFound);
  auto files = LogStore::List(dir.path().string());
  REQUIRE(files.size() == 1);
  CHECK(files[0].path == "job_result.txt");
}

TEST_CASE("a read returns at most 1 MiB whatever is asked, and only from files") {
  prs::testing::TempDir dir;
  dir.Write("logs/big.txt", std::string(3 << 20, 'x'));
  int64_t size = 0;
  auto data = LogStore::Read(dir.Sub("logs"), "big.txt", 0, 5 << 20, &size);
  REQUIRE(data.ok());
  CHECK(data->size() == static_cast<size_t>(kMaxReadLogBytes));
  CHECK(size == 3 << 20);
  CHECK(LogStore::Read(dir.Sub("logs"), "big.txt", -1, 10, &size).status().code() ==
        absl::StatusCode::kInvalidArgument);
  std::filesystem::create_directories(dir.Sub("logs/folder"));
  CHECK_FALSE(LogStore::Read(dir.Sub("logs"), "folder", 0, 10, &size).ok());
}

}  // namespace
}  // namespace prs::master

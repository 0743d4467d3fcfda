#include "agent/log_appender.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/test_util.h"

namespace prs::agent {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("records that cannot be written are kept and written later, in order") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("sys/node/n/agent.txt");
  std::filesystem::create_directories(path);  // a folder in the way: every write fails
  LogAppender appender;
  CHECK_FALSE(appender.Append(path, "one\n"));
  CHECK_FALSE(appender.Append(path, "two\n"));
  CHECK(appender.Retry() == 1);
  std::filesystem::remove(path);
  CHECK(appender.Append(path, "three\n"));  // the kept ones go first
  CHECK(Read(path) == "one\ntwo\nthree\n");
  CHECK(appender.Retry() == 0);
  CHECK(appender.dropped() == 0);
}

TEST_CASE("past its bound the appender drops records and counts them") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("x.txt");
  std::filesystem::create_directories(path);
  LogAppender appender(10);
  CHECK_FALSE(appender.Append(path, "12345678\n"));
  CHECK_FALSE(appender.Append(path, "too much\n"));
  CHECK(appender.dropped() == 1);
  std::filesystem::remove(path);
  CHECK(appender.Retry() == 0);
  CHECK(Read(path) == "12345678\n");
}

TEST_CASE("a file held open that was removed is made again with the next record") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("sys/node/n/process000.txt");
  LogAppender appender;
  CHECK(appender.Append(path, "one\n"));
  CHECK(appender.Append(path, "two\n"));
  CHECK(Read(path) == "one\ntwo\n");
  std::filesystem::remove_all(dir.Sub("sys"));
  CHECK(appender.Append(path, "three\n"));
  CHECK(Read(path) == "three\n");
  appender.CloseFiles();
  CHECK(appender.Append(path, "four\n"));
  CHECK(Read(path) == "three\nfour\n");
}

TEST_CASE("the appender holds at most kMaxOpenFiles files open") {
  prs::testing::TempDir dir;
  LogAppender appender;
  for (size_t i = 0; i < 3 * LogAppender::kMaxOpenFiles; ++i) {
    CHECK(appender.Append(dir.Sub("f" + std::to_string(i)), "x\n"));
  }
  size_t open = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind(dir.path().string(), 0) == 0) ++open;
  }
  CHECK(open <= LogAppender::kMaxOpenFiles);
  CHECK(open > 0);
  appender.CloseFiles();
}

}  // namespace
}  // namespace prs::agent

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

}  // namespace
}  // namespace prs::agent

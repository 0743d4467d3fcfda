#include "master/input_fingerprint.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

namespace fs = std::filesystem;

std::string Fingerprint(const std::vector<std::string>& items) {
  InputFingerprint fp;
  NewTask task;
  task.items = items;
  fp.Add(task, /*tabular=*/false);
  return fp.Finish();
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST_CASE("the fingerprint changes with a file's size or presence, in any folder") {
  prs::testing::TempDir dir;
  fs::create_directories(dir.Sub("a"));
  fs::create_directories(dir.Sub("b"));
  Write(dir.Sub("a/1.txt"), "one");
  Write(dir.Sub("b/2.txt"), "two");
  const std::vector<std::string> items = {dir.Sub("a/1.txt"), dir.Sub("b/2.txt"),
                                          dir.Sub("a/missing.txt")};
  const std::string before = Fingerprint(items);
  CHECK(before.size() == 64);
  CHECK(Fingerprint(items) == before);
  Write(dir.Sub("b/2.txt"), "two, longer");  // the second folder's file
  const std::string changed = Fingerprint(items);
  CHECK(changed != before);
  Write(dir.Sub("a/missing.txt"), "here now");  // back in the first folder
  CHECK(Fingerprint(items) != changed);
}

TEST_CASE("a folder named with a trailing slash is stat'ed as a folder") {
  prs::testing::TempDir dir;
  fs::create_directories(dir.Sub("d"));
  const std::string slash = dir.Sub("d") + "/";
  // Its mtime is part of the fingerprint (a file added changes it), as it
  // was when each path was stat'ed whole.
  const auto t0 = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(dir.Sub("d"), t0);
  const std::string before = Fingerprint({slash});
  CHECK(Fingerprint({slash}) == before);
  fs::last_write_time(dir.Sub("d"), t0 + std::chrono::seconds(5));
  CHECK(Fingerprint({slash}) != before);
}

}  // namespace
}  // namespace prs::master

#include "master/output_file.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/time/time.h"
#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

namespace fs = std::filesystem;

TEST_CASE("earlier outputs moved aside never overwrite one another") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("out/rows.txt");
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::set<std::string> names;
  for (int run = 0; run < 3; ++run) {
    dir.Write("out/rows.txt", "rows of run " + std::to_string(run) + "\n");
    OutputFile out(path);
    // The same job id and second each time: `prs run`s in their own state folders.
    auto note = out.Start("basic-1", now);
    REQUIRE(note.ok());
    CHECK_THAT(*note, Catch::Contains("was moved to"));
  }
  for (const auto& e : fs::directory_iterator(dir.Sub("out"))) {
    names.insert(e.path().filename().string());
  }
  CHECK(names.size() == 4);  // three kept aside and the new, empty file
  for (const auto& name : names) {
    if (name == "rows.txt") continue;
    std::ifstream in(dir.Sub("out/" + name));
    std::string line;
    std::getline(in, line);
    CHECK_THAT(line, Catch::StartsWith("rows of run "));
  }
}

TEST_CASE("a reopened output must be the file the job made") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("out/rows.txt");
  OutputFile out(path);
  REQUIRE(out.Start("j-1", absl::Now()).ok());
  REQUIRE(out.Append(0, "a\nb\n").ok());
  const std::string id = out.id();
  out.Close();
  CHECK(out.Reopen(2, id).ok());  // cut back to the committed "a\n"
  CHECK(out.CheckSame(2).ok());
  CHECK_FALSE(out.CheckSame(4).ok());
  out.Close();
  fs::rename(path, path + ".kept");
  dir.Write("out/rows.txt", "someone else's rows\n");
  auto s = out.Reopen(0, id);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  // No file and nothing committed: the job makes its output anew.
  OutputFile gone(dir.Sub("out/never.txt"));
  CHECK(gone.Reopen(0, id).code() == absl::StatusCode::kNotFound);
  CHECK_FALSE(fs::exists(dir.Sub("out/never.txt")));
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  CHECK(line == "someone else's rows");
}

TEST_CASE("the master never writes its output through a link into its state folder") {
  prs::testing::TempDir dir;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  dir.Write("state/state.db", "the database");
  const std::string state = fs::canonical(dir.Sub("state")).string();
  // The output folder swapped for a link into the state folder after submit.
  fs::create_symlink(dir.Sub("state"), dir.Sub("out"));
  OutputFile swapped(dir.Sub("out/state.db"), state);
  auto started = swapped.Start("job-1", now);
  REQUIRE_FALSE(started.ok());
  CHECK_THAT(std::string(started.status().message()), Catch::Contains("master's state folder"));
  // The output file itself a link (to a file that does not exist yet).
  fs::create_directories(dir.Sub("real"));
  fs::create_symlink(dir.Sub("state/new.csv"), dir.Sub("real/rows.txt"));
  OutputFile linked(dir.Sub("real/rows.txt"), state);
  started = linked.Start("job-2", now);
  REQUIRE_FALSE(started.ok());
  CHECK_THAT(std::string(started.status().message()), Catch::Contains("symbolic link"));
  CHECK_FALSE(fs::exists(dir.Sub("state/new.csv")));
  std::ifstream db(dir.Sub("state/state.db"));
  std::string text((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  CHECK(text == "the database");
}

}  // namespace
}  // namespace prs::master

#include "master/output_file.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/time/time.h"
#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::set<std::string> Names(const std::string& folder) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) names.insert(e.path().filename().string());
  return names;
}

TEST_CASE("earlier outputs moved aside never overwrite one another") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("out/rows.txt");
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (int run = 0; run < 4; ++run) {
    OutputFile out(path);
    // The same job id and second each time: `prs run`s in their own state folders.
    auto note = out.Start("basic-1", now);
    REQUIRE(note.ok());
    if (run > 0) CHECK_THAT(*note, Catch::Contains("was moved to"));
    REQUIRE(out.Append(0, "rows of run " + std::to_string(run) + "\n").ok());
  }
  const std::set<std::string> names = Names(dir.Sub("out"));
  CHECK(names.size() == 4);  // three kept aside and the last run's
  for (const auto& name : names) {
    CHECK_THAT(ReadAll(dir.Sub("out/" + name)), Catch::StartsWith("rows of run "));
  }
  CHECK(ReadAll(path) == "rows of run 3\n");
}

TEST_CASE("a file prs did not make is refused, never moved or replaced", "[output_file]") {
  prs::testing::TempDir dir;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  dir.Write("out/rows.txt", "someone's results\n");
  dir.Write("out/empty.txt", "");
  for (const char* name : {"rows.txt", "empty.txt"}) {
    const std::string path = dir.Sub(std::string("out/") + name);
    const absl::Status checked = OutputFile::CheckPath(path, nullptr);
    CHECK(checked.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(checked.message()),
               Catch::Contains("exists and prs did not make it") &&
                   Catch::Contains("move or delete it, or choose another output"));
    OutputFile out(path);
    auto started = out.Start("job-1", now);
    REQUIRE_FALSE(started.ok());
    CHECK(started.status() == checked);
  }
  CHECK(ReadAll(dir.Sub("out/rows.txt")) == "someone's results\n");
  CHECK(Names(dir.Sub("out")) == std::set<std::string>{"empty.txt", "rows.txt"});
}

TEST_CASE("an output path that is not a regular file is refused", "[output_file]") {
  prs::testing::TempDir dir;
  fs::create_directories(dir.Sub("out/folder"));
  REQUIRE(::mkfifo(dir.Sub("out/pipe").c_str(), 0600) == 0);
  for (const char* name : {"folder", "pipe"}) {
    const std::string path = dir.Sub(std::string("out/") + name);
    CHECK_THAT(std::string(OutputFile::CheckPath(path, nullptr).message()),
               Catch::Contains("is not a regular file"));
    OutputFile out(path);
    auto started = out.Start("job-1", absl::Now());  // never blocks on the pipe
    REQUIRE_FALSE(started.ok());
    CHECK(started.status().code() == absl::StatusCode::kFailedPrecondition);
  }
  CHECK(fs::is_directory(dir.Sub("out/folder")));
}

TEST_CASE("an output the store knows is prs's without the mark", "[output_file]") {
  // A filesystem without user extended attributes (NFSv3) keeps no mark:
  // the store's record of the file's identity stands in for it.
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("out/rows.txt");
  dir.Write("out/rows.txt", "rows of an earlier job\n");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  const std::string id = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  KnownOutput known = [&id](const std::string& asked) { return asked == id; };
  CHECK(OutputFile::CheckPath(path, known).ok());
  OutputFile out(path, "", known);
  auto note = out.Start("job-2", absl::FromUnixSeconds(1'800'000'000));
  REQUIRE(note.ok());
  CHECK_THAT(*note, Catch::Contains("was moved to"));
  CHECK(Names(dir.Sub("out")).size() == 2);
  // The new file carries the mark (this filesystem keeps user attributes).
  char value[64] = {};
  const ssize_t n = ::getxattr(path.c_str(), kOutputMarkAttribute, value, sizeof value);
  if (n >= 0 || errno != ENOTSUP) CHECK(std::string(value, n > 0 ? n : 0) == "job-2");
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

TEST_CASE("where no mark can be kept, the folder's list says which files prs made",
          "[output_file]") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("out/rows.txt");
  dir.Write("out/rows.txt", "an unmarked earlier output\n");
  dir.Write("out/theirs.txt", "someone's\n");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  // As prs writes it on NFSv3: "<inode>\t<name>".
  dir.Write(std::string("out/") + kUnmarkedOutputsFile,
            "1\tother.txt\n" + std::to_string(st.st_ino) + "\trows.txt\n");
  CHECK(OutputFile::CheckPath(path, nullptr).ok());
  CHECK_FALSE(OutputFile::CheckPath(dir.Sub("out/theirs.txt"), nullptr).ok());
  OutputFile out(path);
  auto note = out.Start("job-2", absl::FromUnixSeconds(1'800'000'000));
  REQUIRE(note.ok());
  CHECK_THAT(*note, Catch::Contains("was moved to"));
}

TEST_CASE("an output folder swapped for a link into a system folder is refused", "[output_file]") {
  prs::testing::TempDir dir;
  fs::create_symlink("/etc", dir.Sub("out"));
  const std::string name = "prs-unit-test-never-written.txt";
  OutputFile out(dir.Sub("out/" + name));
  auto started = out.Start("job-1", absl::Now());
  REQUIRE_FALSE(started.ok());
  CHECK_THAT(std::string(started.status().message()),
             Catch::Contains("leads into the system folder /etc"));
  CHECK_FALSE(fs::exists("/etc/" + name));
  CHECK(SystemFolderOf("/usr/local/share") == "/usr");
  CHECK(SystemFolderOf("/") == "/");
  CHECK(SystemFolderOf("/etcetera/out").empty());
  CHECK(SystemFolderOf("/tmp/out").empty());
}

}  // namespace
}  // namespace prs::master

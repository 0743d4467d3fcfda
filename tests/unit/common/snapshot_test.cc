#include "common/snapshot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>
#include "tests/unit/test_util.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace prs {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

using prs::testing::TempDir;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 0777;
}

std::vector<std::string> Paths(const v1::SourceSnapshot& snapshot) {
  std::vector<std::string> paths;
  for (const v1::SnapshotFile& file : snapshot.files()) paths.push_back(file.path());
  return paths;
}

// Every entry directly in `dir`, by name.
std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

v1::SourceSnapshot SnapshotOf(std::initializer_list<std::pair<std::string, std::string>> files) {
  v1::SourceSnapshot snapshot;
  for (const auto& [path, content] : files) {
    v1::SnapshotFile* file = snapshot.add_files();
    file->set_path(path);
    file->set_mode(0644);
    file->set_content(content);
  }
  return snapshot;
}

TEST_CASE("PackDirectory packs every regular file, sorted, with modes", "[snapshot]") {
  TempDir dir;
  dir.Write("score.py", "def run(b): return b\n", 0755);
  dir.Write("lib/util.py", "X = 1\n", 0600);
  dir.Write("lib/deep/data.bin", std::string("\0\1\2", 3));
  dir.Write("a.txt", "");
  dir.Write("__pycache__/score.cpython-311.pyc", "junk");
  dir.Write("lib/__pycache__/util.pyc", "junk");
  dir.Write(".git/HEAD", "ref");
  dir.Write(".gitignore", "out/\n");

  const absl::StatusOr<v1::SourceSnapshot> snapshot = PackDirectory(dir.path().string(), -1);
  REQUIRE(snapshot.ok());
  CHECK(Paths(*snapshot) == std::vector<std::string>{".gitignore", "a.txt", "lib/deep/data.bin",
                                                     "lib/util.py", "score.py"});
  CHECK(snapshot->files(0).content() == "out/\n");
  CHECK(snapshot->files(1).content().empty());
  CHECK(snapshot->files(2).content() == std::string("\0\1\2", 3));
  CHECK(snapshot->files(3).mode() == 0600);
  CHECK(snapshot->files(4).mode() == 0755);
  CHECK(snapshot->files(4).content() == "def run(b): return b\n");
}

TEST_CASE("PackDirectory accepts a trailing slash on the folder", "[snapshot]") {
  TempDir dir;
  dir.Write("sub/x.py", "x");
  const absl::StatusOr<v1::SourceSnapshot> snapshot =
      PackDirectory(dir.path().string() + "/", 1000);
  REQUIRE(snapshot.ok());
  CHECK(Paths(*snapshot) == std::vector<std::string>{"sub/x.py"});
}

TEST_CASE("PackDirectory includes symlinked files' contents and skips the rest", "[snapshot]") {
  TempDir outside;
  outside.Write("shared.py", "SHARED = True\n", 0640);
  outside.Write("folder/inner.py", "inner");
  TempDir dir;
  dir.Write("score.py", "s");
  fs::create_symlink(outside.path() / "shared.py", dir.path() / "shared.py");
  fs::create_directory_symlink(outside.path() / "folder", dir.path() / "linked_folder");
  fs::create_symlink(dir.path() / "gone.py", dir.path() / "dangling.py");

  const absl::StatusOr<v1::SourceSnapshot> snapshot = PackDirectory(dir.path().string(), -1);
  REQUIRE(snapshot.ok());
  CHECK(Paths(*snapshot) == std::vector<std::string>{"score.py", "shared.py"});
  CHECK(snapshot->files(1).content() == "SHARED = True\n");
  CHECK(snapshot->files(1).mode() == 0640);
}

TEST_CASE("PackDirectory refuses a snapshot over the limit, suggesting inputs", "[snapshot]") {
  TempDir dir;
  dir.Write("score.py", std::string(100, 's'));
  dir.Write("data/big.bin", std::string(3000, 'b'));

  const absl::StatusOr<v1::SourceSnapshot> snapshot = PackDirectory(dir.path().string(), 2048);
  REQUIRE(snapshot.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(
      snapshot.status().message() ==
      absl::StrCat("source_directory '", dir.path().string(),
                   "' holds 3 KB in 2 files, more than the snapshot limit of 2 KB (the largest is "
                   "data/big.bin, 2.9 KB); move data out of source_directory into inputs or "
                   "side_inputs"));

  CHECK(PackDirectory(dir.path().string(), 3100).ok());
  CHECK(PackDirectory(dir.path().string(), 3099).status().code() ==
        absl::StatusCode::kResourceExhausted);
}

TEST_CASE("PackDirectory reports a missing or non-folder source_directory", "[snapshot]") {
  TempDir dir;
  const std::string missing = (dir.path() / "nope").string();
  const absl::Status not_found = PackDirectory(missing, -1).status();
  CHECK(not_found.code() == absl::StatusCode::kNotFound);
  CHECK(not_found.message() == absl::StrCat("source_directory '", missing, "' does not exist"));

  const fs::path file = dir.Write("file.py", "x");
  const absl::Status not_folder = PackDirectory(file.string(), -1).status();
  CHECK(not_folder.code() == absl::StatusCode::kInvalidArgument);
  CHECK(not_folder.message() ==
        absl::StrCat("source_directory '", file.string(), "' is not a folder"));
}

TEST_CASE("PackDirectory of an empty folder is an empty snapshot", "[snapshot]") {
  TempDir dir;
  fs::create_directories(dir.path() / "empty" / "nested");
  const absl::StatusOr<v1::SourceSnapshot> snapshot = PackDirectory(dir.path().string(), 0);
  REQUIRE(snapshot.ok());
  CHECK(snapshot->files().empty());
}

TEST_CASE("UnpackSnapshot restores what PackDirectory packed", "[snapshot]") {
  TempDir source;
  source.Write("score.py", "def run(b): return b\n", 0755);
  source.Write("lib/util.py", "X = 1\n", 0640);
  source.Write("lib/deep/data.bin", std::string("\0\1\2", 3), 0444);
  const absl::StatusOr<v1::SourceSnapshot> snapshot = PackDirectory(source.path().string(), -1);
  REQUIRE(snapshot.ok());

  TempDir target;
  const fs::path dest = target.path() / "jobs" / "job-1" / "code";
  REQUIRE(UnpackSnapshot(*snapshot, dest.string()).ok());
  CHECK(ReadAll(dest / "score.py") == "def run(b): return b\n");
  CHECK(ReadAll(dest / "lib" / "util.py") == "X = 1\n");
  CHECK(ReadAll(dest / "lib" / "deep" / "data.bin") == std::string("\0\1\2", 3));
  CHECK(ModeOf(dest / "score.py") == 0755);
  CHECK(ModeOf(dest / "lib" / "util.py") == 0640);
  CHECK(ModeOf(dest / "lib" / "deep" / "data.bin") == 0444);
  // No temporary folder is left next to it.
  CHECK(Listing(dest.parent_path()) == std::vector<std::string>{"code"});

  const absl::StatusOr<v1::SourceSnapshot> again = PackDirectory(dest.string(), -1);
  REQUIRE(again.ok());
  CHECK(again->SerializeAsString() == snapshot->SerializeAsString());
}

TEST_CASE("UnpackSnapshot replaces an existing folder or file", "[snapshot]") {
  TempDir target;
  const fs::path dest = target.path() / "code";
  REQUIRE(UnpackSnapshot(SnapshotOf({{"old.py", "old"}, {"keep/x.py", "1"}}), dest.string()).ok());
  REQUIRE(UnpackSnapshot(SnapshotOf({{"new.py", "new"}, {"keep/x.py", "2"}}), dest.string()).ok());
  CHECK_FALSE(fs::exists(dest / "old.py"));
  CHECK(ReadAll(dest / "new.py") == "new");
  CHECK(ReadAll(dest / "keep" / "x.py") == "2");
  CHECK(Listing(target.path()) == std::vector<std::string>{"code"});

  const fs::path file = target.Write("was_a_file", "x");
  REQUIRE(UnpackSnapshot(SnapshotOf({{"a.py", "a"}}), file.string() + "/").ok());
  CHECK(fs::is_directory(file));
  CHECK(ReadAll(file / "a.py") == "a");
}

TEST_CASE("UnpackSnapshot of an empty snapshot makes an empty folder", "[snapshot]") {
  TempDir target;
  REQUIRE(UnpackSnapshot(v1::SourceSnapshot(), (target.path() / "code").string()).ok());
  CHECK(fs::is_directory(target.path() / "code"));
  CHECK(fs::is_empty(target.path() / "code"));
}

TEST_CASE("UnpackSnapshot keeps files readable by their owner", "[snapshot]") {
  v1::SourceSnapshot snapshot = SnapshotOf({{"zero.py", "z"}, {"write_only.py", "w"}});
  snapshot.mutable_files(0)->set_mode(0);
  snapshot.mutable_files(1)->set_mode(0200);
  snapshot.add_files()->set_path("setuid.py");
  snapshot.mutable_files(2)->set_mode(04755);
  TempDir target;
  const fs::path dest = target.path() / "code";
  REQUIRE(UnpackSnapshot(snapshot, dest.string()).ok());
  CHECK(ModeOf(dest / "zero.py") == 0644);
  CHECK(ModeOf(dest / "write_only.py") == 0600);
  struct stat info {};
  REQUIRE(::stat((dest / "setuid.py").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0755);
}

TEST_CASE("UnpackSnapshot refuses unsafe paths before writing anything", "[snapshot]") {
  struct Case {
    std::string path;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "snapshot: file path '' is empty"},
      {"/etc/passwd", "snapshot: file path '/etc/passwd' is absolute"},
      {"../escape.py", "snapshot: file path '../escape.py' has a '..' component"},
      {"a/../../b.py", "has a '..' component"},
      {"a//b.py", "snapshot: file path 'a//b.py' has an empty component"},
      {"a/", "has an empty component"},
      {"./a.py", "has a '.' component"},
      {std::string("a\0b", 3), "'a\\000b' contains a NUL character"},
  };
  for (const Case& c : cases) {
    INFO(c.path);
    TempDir target;
    const fs::path dest = target.path() / "code";
    target.Write("code/existing.py", "keep");
    const absl::Status status =
        UnpackSnapshot(SnapshotOf({{"fine.py", "f"}, {c.path, "x"}}), dest.string());
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains(c.message));
    CHECK_THAT(std::string(status.message()),
               Contains("a snapshot holds only relative paths inside its folder"));
    CHECK(Listing(dest) == std::vector<std::string>{"existing.py"});
    CHECK(Listing(target.path()) == std::vector<std::string>{"code"});
    CHECK_FALSE(fs::exists(target.path() / "escape.py"));
  }
}

TEST_CASE("UnpackSnapshot refuses duplicates and file/folder clashes", "[snapshot]") {
  TempDir target;
  const std::string dest = (target.path() / "code").string();
  const absl::Status twice = UnpackSnapshot(SnapshotOf({{"a.py", "1"}, {"a.py", "2"}}), dest);
  CHECK(twice.code() == absl::StatusCode::kInvalidArgument);
  CHECK(twice.message() == "snapshot: file path 'a.py' appears twice");

  const absl::Status clash = UnpackSnapshot(SnapshotOf({{"a", "1"}, {"a/b.py", "2"}}), dest);
  CHECK(clash.code() == absl::StatusCode::kInvalidArgument);
  CHECK(clash.message() == "snapshot: 'a' is both a file and the folder of 'a/b.py'");
  CHECK_FALSE(fs::exists(dest));
  CHECK(fs::is_empty(target.path()));
}

TEST_CASE("UnpackSnapshot refuses an empty destination", "[snapshot]") {
  CHECK(UnpackSnapshot(v1::SourceSnapshot(), "").code() == absl::StatusCode::kInvalidArgument);
  CHECK(UnpackSnapshot(v1::SourceSnapshot(), "/").code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("UnpackSnapshot reports filesystem errors and cleans up", "[snapshot]") {
  if (::geteuid() == 0) return;  // root writes anywhere.
  TempDir target;
  fs::create_directories(target.path() / "locked");
  fs::permissions(target.path() / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  const absl::Status status =
      UnpackSnapshot(SnapshotOf({{"a.py", "a"}}), (target.path() / "locked" / "code").string());
  fs::permissions(target.path() / "locked", fs::perms::owner_all);
  CHECK(status.code() == absl::StatusCode::kPermissionDenied);
  CHECK(fs::is_empty(target.path() / "locked"));
}

}  // namespace
}  // namespace prs

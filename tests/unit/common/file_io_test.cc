#include "common/file_io.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/match.h"
#include "tests/unit/test_util.h"

namespace prs {
namespace {

using prs::testing::TempDir;

TEST_CASE("WriteFileAtomic replaces a file whole and leaves no temporary file") {
  TempDir dir;
  const std::string path = dir.Sub("a.txt");
  REQUIRE(WriteFileAtomic(path, "first").ok());
  REQUIRE(WriteFileAtomic(path, "second, longer").ok());
  CHECK(*ReadFile(path) == "second, longer");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    CHECK(e.path().filename() == "a.txt");
  }
  CHECK(entries == 1);
  // A temporary name is unique and ends in ".tmp" (log listings leave those out).
  const std::string a = UniqueTempName(path), b = UniqueTempName(path);
  CHECK(a != b);
  CHECK(absl::EndsWith(a, ".tmp"));
  CHECK(absl::StartsWith(a, path + "."));
  const auto missing = WriteFileAtomic(dir.Sub("no/such/folder/a.txt"), "x");
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::StrContains(missing.message(), "no/such/folder"));
}

TEST_CASE("AppendToFile makes the folder; AppendCsv writes the header once") {
  TempDir dir;
  const std::string log = dir.Sub("deep/er/log.txt");
  REQUIRE(AppendToFile(log, "one\n").ok());
  REQUIRE(AppendToFile(log, "two\n").ok());
  CHECK(*ReadFile(log) == "one\ntwo\n");
  const std::string csv = dir.Sub("rows.csv");
  REQUIRE(AppendCsv(csv, "a,b", CsvRow({"1", "x,y"})).ok());
  REQUIRE(AppendCsv(csv, "a,b", CsvRow({"2", "say \"hi\""})).ok());
  CHECK(*ReadFile(csv) == "a,b\n1,\"x,y\"\n2,\"say \"\"hi\"\"\"\n");
  CHECK(CsvField("plain") == "plain");
  CHECK(CsvField("line\nbreak") == "\"line\nbreak\"");
}

TEST_CASE("CreateExclusive refuses an existing file") {
  TempDir dir;
  const std::string path = dir.Sub("x");
  REQUIRE(CreateExclusive(path, "1").ok());
  const auto again = CreateExclusive(path, "2");
  CHECK(again.code() == absl::StatusCode::kAlreadyExists);
  CHECK(*ReadFile(path) == "1");
}

}  // namespace
}  // namespace prs

#include "master/partitioner.h"

#include <catch2/catch.hpp>

#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

std::vector<NewTask> Partition(const std::vector<v1::Input>& inputs, int64_t size,
                               absl::Status* status) {
  std::vector<NewTask> tasks;
  std::atomic<bool> stop{false};
  *status = PartitionFileInputs(
      inputs, size,
      [&](NewTask t) {
        tasks.push_back(std::move(t));
        return true;
      },
      stop);
  return tasks;
}

v1::Input MakeInput(const std::string& path) {
  v1::Input in;
  in.set_name("in");
  in.set_type("file");
  in.set_path(path);
  return in;
}

TEST_CASE("a folder is walked recursively in sorted order and cut into mini-batches") {
  prs::testing::TempDir dir;
  for (const char* f : {"b/2.txt", "b/1.txt", "a.txt", "c/d/e.txt", "0.txt"}) dir.Write(f, "x");
  absl::Status status;
  auto tasks = Partition({MakeInput(dir.path().string())}, 2, &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[0].task_id == 0);
  CHECK(tasks[2].task_id == 2);
  CHECK(tasks[0].items == std::vector<std::string>{dir.Sub("0.txt"), dir.Sub("a.txt")});
  CHECK(tasks[1].items == std::vector<std::string>{dir.Sub("b/1.txt"), dir.Sub("b/2.txt")});
  CHECK(tasks[2].items == std::vector<std::string>{dir.Sub("c/d/e.txt")});
}

TEST_CASE("a glob matches files only, sorted") {
  prs::testing::TempDir dir;
  for (const char* f : {"x2.png", "x1.png", "y.png", "x3.jpg"}) dir.Write(f, "x");
  dir.Write("xdir.png/inner", "x");
  absl::Status status;
  auto tasks = Partition({MakeInput(dir.Sub("x*.png"))}, 10, &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].items == std::vector<std::string>{dir.Sub("x1.png"), dir.Sub("x2.png")});
}

TEST_CASE("a list file names paths relative to itself, skipping blanks and comments") {
  prs::testing::TempDir dir;
  dir.Write("list.txt", "# inputs\nimg/a.png\n\n/abs/b.png\n  img/c.png  \n");
  absl::Status status;
  auto tasks = Partition({MakeInput(dir.Sub("list.txt"))}, 2, &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].items == std::vector<std::string>{dir.Sub("img/a.png"), "/abs/b.png"});
  CHECK(tasks[1].items == std::vector<std::string>{dir.Sub("img/c.png")});
}

TEST_CASE("mini-batches never cross inputs and ids run on") {
  prs::testing::TempDir dir;
  for (const char* f : {"one/a", "one/b", "one/c", "two/d"}) dir.Write(f, "x");
  absl::Status status;
  auto tasks = Partition({MakeInput(dir.Sub("one")), MakeInput(dir.Sub("two"))}, 2, &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[1].items.size() == 1);
  CHECK(tasks[2].task_id == 2);
  CHECK(tasks[2].items == std::vector<std::string>{dir.Sub("two/d")});
}

TEST_CASE("missing and empty inputs are errors that name the input") {
  prs::testing::TempDir dir;
  absl::Status status;
  Partition({MakeInput(dir.Sub("nope"))}, 2, &status);
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(status.message()), Catch::Contains("does not exist"));
  std::filesystem::create_directories(dir.Sub("empty"));
  Partition({MakeInput(dir.Sub("empty"))}, 2, &status);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("holds no files"));
}

TEST_CASE("emit returning false stops the listing") {
  prs::testing::TempDir dir;
  for (int i = 0; i < 10; ++i) dir.Write("f" + std::to_string(i), "x");
  std::atomic<bool> stop{false};
  int calls = 0;
  auto status = PartitionFileInputs(
      {MakeInput(dir.path().string())}, 1, [&](NewTask) { return ++calls < 3; }, stop);
  CHECK(status.ok());
  CHECK(calls == 3);
}

}  // namespace
}  // namespace prs::master

#include "master/partitioner.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  v1::Input list;
  list.set_name("in");
  list.set_list_file(dir.Sub("list.txt"));
  auto tasks = Partition({list}, 2, &status);
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

std::vector<NewTask> PartitionTabular(const v1::JobSpec& spec, absl::Status* status) {
  std::vector<NewTask> tasks;
  std::atomic<bool> stop{false};
  *status = PartitionTabularInputs(
      spec,
      [&](NewTask t) {
        tasks.push_back(std::move(t));
        return true;
      },
      stop);
  return tasks;
}

v1::JobSpec TabularSpec(const std::string& path, v1::MiniBatchUnit unit, int64_t size) {
  v1::JobSpec spec;
  v1::Input* in = spec.add_inputs();
  in->set_name("table");
  in->set_type("tabular");
  in->set_path(path);
  spec.set_mini_batch_unit(unit);
  spec.set_mini_batch_size(size);
  return spec;
}

// "fmt:SIZE:MTIME_NS" of `path`, as the partitioner stamps it.
std::string Stamped(const std::string& format, const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return absl::StrCat(format, ":", st.st_size, ":",
                      int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
}

TEST_CASE("tabular files become whole-file mini-batches or plans, by size alone") {
  prs::testing::TempDir dir;
  dir.Write("t/a.csv", "id\n1\n");                       // small: whole
  dir.Write("t/b.csv", "id\n" + std::string(100, '1'));  // larger than 50 B: planned
  dir.Write("t/c.jsonl.gz", std::string(500, 'x'));      // compressed: whole, never split
  dir.Write("t/d\ttab.tsv", "x\n");                      // a tab in the name survives
  absl::Status status;
  auto tasks = PartitionTabular(TabularSpec(dir.Sub("t"), v1::MINI_BATCH_BYTES, 50), &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 4);
  CHECK(tasks[0].items == std::vector<std::string>{"range\t" + Stamped("csv", dir.Sub("t/a.csv")) +
                                                   "\t0\t-1\t" + dir.Sub("t/a.csv")});
  CHECK(tasks[0].kind == TaskKind::kRun);
  CHECK(tasks[0].item_count == -1);  // records unknown until a worker reads the file
  CHECK(tasks[1].items ==
        std::vector<std::string>{"plan\tbytes\t" + Stamped("csv", dir.Sub("t/b.csv")) + "\t50\t" +
                                 dir.Sub("t/b.csv")});
  CHECK(tasks[1].kind == TaskKind::kPlan);
  CHECK(tasks[1].item_count == 0);
  CHECK(tasks[2].items ==
        std::vector<std::string>{"range\t" + Stamped("jsonl", dir.Sub("t/c.jsonl.gz")) +
                                 "\t0\t-1\t" + dir.Sub("t/c.jsonl.gz")});
  CHECK(tasks[3].items ==
        std::vector<std::string>{"range\t" + Stamped("tsv", dir.Sub("t/d\ttab.tsv")) + "\t0\t-1\t" +
                                 dir.Sub("t/d\ttab.tsv")});

  // Rows mode plans every file but the compressed one.
  tasks = PartitionTabular(TabularSpec(dir.Sub("t"), v1::MINI_BATCH_ROWS, 7), &status);
  REQUIRE(status.ok());
  CHECK(tasks[0].items ==
        std::vector<std::string>{"plan\trows\t" + Stamped("csv", dir.Sub("t/a.csv")) + "\t7\t" +
                                 dir.Sub("t/a.csv")});
  CHECK(tasks[2].kind == TaskKind::kRun);

  // partition_keys plans every file, compressed too; the keys travel as JSON.
  v1::JobSpec keys = TabularSpec(dir.Sub("t/a.csv"), v1::MINI_BATCH_BYTES, 50);
  keys.add_partition_keys("store");
  keys.add_partition_keys("we\"ek");
  tasks = PartitionTabular(keys, &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 1);  // a data file named directly, not a list of paths
  CHECK(tasks[0].items ==
        std::vector<std::string>{"plan\tkeys\t" + Stamped("csv", dir.Sub("t/a.csv")) +
                                 "\t[\"store\",\"we\\\"ek\"]\t" + dir.Sub("t/a.csv")});
}

TEST_CASE("a tabular file that vanished while listed is one mini-batch its worker fails") {
  prs::testing::TempDir dir;
  dir.Write("t/a.csv", "id\n1\n");
  std::filesystem::create_symlink(dir.Sub("t/nowhere.csv"), dir.Sub("t/b.csv"));
  dir.Write("list.txt", dir.Sub("t/gone.csv") + "\n");
  absl::Status status;
  // A glob leaves the dangling link out, as a folder walk does (and says so).
  auto tasks = PartitionTabular(TabularSpec(dir.Sub("t/*.csv"), v1::MINI_BATCH_BYTES, 50), &status);
  REQUIRE(status.ok());
  REQUIRE(tasks.size() == 1);
  // A listed file is not looked at while listing: its worker fails it.
  v1::JobSpec listed = TabularSpec("", v1::MINI_BATCH_ROWS, 5);
  listed.mutable_inputs(0)->set_list_file(dir.Sub("list.txt"));
  tasks = PartitionTabular(listed, &status);
  REQUIRE(status.ok());
  CHECK(tasks.at(0).items ==
        std::vector<std::string>{"range\tcsv\t0\t-1\t" + dir.Sub("t/gone.csv")});
}

TEST_CASE("a tabular file of unknown format is refused unless the input sets format") {
  prs::testing::TempDir dir;
  dir.Write("t/a.csv", "id\n1\n");
  dir.Write("t/notes.txt", "id\n1\n");
  absl::Status status;
  PartitionTabular(TabularSpec(dir.Sub("t"), v1::MINI_BATCH_BYTES, 50), &status);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("cannot tell the format of " + dir.Sub("t/notes.txt")));
  v1::JobSpec spec = TabularSpec(dir.Sub("t"), v1::MINI_BATCH_BYTES, 50);
  spec.mutable_inputs(0)->set_format("csv");
  auto tasks = PartitionTabular(spec, &status);
  REQUIRE(status.ok());
  CHECK(tasks.size() == 2);
  CHECK(TabularFormatOf("/x/a.NDJSON.gz") == "jsonl");
  CHECK(TabularFormatOf("/x/a.tab") == "tsv");
  CHECK(TabularFormatOf("/x/a.gz").empty());
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

// Lists `inputs` with hooks; `notes` gets what was left out.
std::vector<NewTask> PartitionNoted(const std::vector<v1::Input>& inputs, int64_t size,
                                    const std::string& exclude, std::vector<std::string>* notes,
                                    absl::Status* status) {
  std::vector<NewTask> tasks;
  std::atomic<bool> stop{false};
  ListingHooks hooks;
  hooks.exclude_dir = exclude;
  hooks.note = [&](const std::string& n) { notes->push_back(n); };
  *status = PartitionFileInputs(
      inputs, size,
      [&](NewTask t) {
        tasks.push_back(std::move(t));
        return true;
      },
      stop, hooks);
  return tasks;
}

std::vector<std::string> Items(const std::vector<NewTask>& tasks) {
  std::vector<std::string> items;
  for (const auto& t : tasks) items.insert(items.end(), t.items.begin(), t.items.end());
  return items;
}

TEST_CASE("folder links are followed once: a loop ends, a link above the input is left out") {
  prs::testing::TempDir dir;
  dir.Write("data/a.txt", "x");
  dir.Write("data/sub/b.txt", "x");
  dir.Write("elsewhere/c.txt", "x");
  dir.Write("beside.txt", "x");
  namespace fs = std::filesystem;
  fs::create_directory_symlink(".", dir.Sub("data/self"));
  fs::create_directory_symlink("..", dir.Sub("data/sub/up"));
  fs::create_directory_symlink("..", dir.Sub("data/parent"));
  fs::create_directory_symlink(dir.Sub("elsewhere"), dir.Sub("data/linked"));
  fs::create_directory_symlink(dir.Sub("elsewhere"), dir.Sub("data/twice"));
  fs::create_symlink(dir.Sub("nowhere.txt"), dir.Sub("data/broken.txt"));
  std::vector<std::string> notes;
  absl::Status status;
  auto tasks = PartitionNoted({MakeInput(dir.Sub("data"))}, 100, "", &notes, &status);
  REQUIRE(status.ok());
  // Each file once; a link to a folder outside the input is listed under its link's name.
  CHECK(Items(tasks) == std::vector<std::string>{dir.Sub("data/a.txt"),
                                                 dir.Sub("data/linked/c.txt"),
                                                 dir.Sub("data/sub/b.txt")});
  const std::string all = absl::StrJoin(notes, "\n");
  CHECK_THAT(all, Catch::Contains("skipped " + dir.Sub("data/broken.txt") + ": a link to " +
                                  dir.Sub("nowhere.txt") + ", which does not exist"));
  CHECK_THAT(all, Catch::Contains("skipped " + dir.Sub("data/parent") + ": a link to " +
                                  dir.path().string() + ", a folder that holds the input itself"));
  CHECK_THAT(all, Catch::Contains("skipped " + dir.Sub("data/self")));
  CHECK_THAT(all, Catch::Contains("skipped " + dir.Sub("data/sub/up")));
  CHECK_THAT(all, Catch::Contains("skipped " + dir.Sub("data/twice") + ": a link to " +
                                  dir.Sub("elsewhere") + ", a folder that is listed already"));
  CHECK(notes.size() == 5);
}

TEST_CASE("the output folder is left out of a folder walk and of a glob's matches") {
  prs::testing::TempDir dir;
  dir.Write("data/a.txt", "x");
  dir.Write("data/out/parallel_run_step.txt", "row\n");
  dir.Write("data/out/parallel_run_step.txt.20260101-000000.before-j-1", "row\n");
  std::vector<std::string> notes;
  absl::Status status;
  auto tasks =
      PartitionNoted({MakeInput(dir.Sub("data"))}, 100, dir.Sub("data/out"), &notes, &status);
  REQUIRE(status.ok());
  CHECK(Items(tasks) == std::vector<std::string>{dir.Sub("data/a.txt")});
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("it is the job's output folder"));
  notes.clear();
  tasks =
      PartitionNoted({MakeInput(dir.Sub("data/*/*"))}, 100, dir.Sub("data/out"), &notes, &status);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);  // nothing left
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("prs never lists its own output"));
}

v1::JobSpec FileSpec(const std::string& path, const std::string& output) {
  v1::JobSpec spec;
  *spec.add_inputs() = MakeInput(path);
  spec.set_output(output);
  return spec;
}

TEST_CASE("inputs that cannot be listed are refused at submit, naming the problem") {
  prs::testing::TempDir dir;
  namespace fs = std::filesystem;
  fs::create_directories(dir.Sub("empty/deep/er"));
  dir.Write("data/a.txt", "x");
  auto message = [](const absl::Status& s) { return std::string(s.message()); };
  CHECK(CheckInputsAtSubmit(FileSpec(dir.Sub("data"), dir.Sub("out"))).ok());
  CHECK(CheckInputsAtSubmit(FileSpec(dir.Sub("data/a.txt"), "")).ok());  // one file
  CHECK_THAT(message(CheckInputsAtSubmit(FileSpec(dir.Sub("empty"), dir.Sub("out")))),
             Catch::Contains("empty holds no files"));
  CHECK_THAT(message(CheckInputsAtSubmit(FileSpec(dir.Sub("data/*.png"), ""))),
             Catch::Contains("matches no file"));
  CHECK_THAT(message(CheckInputsAtSubmit(FileSpec(dir.Sub("nope"), ""))),
             Catch::Contains("does not exist on the master"));
  CHECK_THAT(message(CheckInputsAtSubmit(FileSpec(dir.Sub("data"), dir.Sub("data/.")))),
             Catch::Contains("output: " + dir.Sub("data/.") + " is also the folder of input 'in'"));
  // Only the output folder inside the input: nothing left to list.
  dir.Write("only/out/rows.txt", "x");
  CHECK_THAT(message(CheckInputsAtSubmit(FileSpec(dir.Sub("only"), dir.Sub("only/out")))),
             Catch::Contains("holds no files (its output folder left out)"));
}

TEST_CASE("a list_file naming paths that do not exist is refused, naming each of them") {
  prs::testing::TempDir dir;
  dir.Write("img/a.png", "x");
  std::string list = "# the inputs\nimg/a.png\n";
  for (int i = 0; i < 25; ++i) absl::StrAppend(&list, "img/gone", i, ".png\n");
  dir.Write("list.txt", list);
  v1::JobSpec spec;
  v1::Input* in = spec.add_inputs();
  in->set_name("images");
  in->set_list_file(dir.Sub("list.txt"));
  // Only a regular file anyone may read: never a key the master alone can read, a FIFO
  // (which would block) or a line longer than a path.
  dir.Write("secret.key", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n");
  std::filesystem::permissions(dir.Sub("secret.key"), std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write);
  in->set_list_file(dir.Sub("secret.key"));
  CHECK_THAT(std::string(CheckInputsAtSubmit(spec).message()),
             Catch::Contains("is not readable by everyone"));
  REQUIRE(::mkfifo(dir.Sub("fifo").c_str(), 0644) == 0);
  in->set_list_file(dir.Sub("fifo"));
  CHECK_THAT(std::string(CheckInputsAtSubmit(spec).message()),
             Catch::Contains("is not a regular file"));
  dir.Write("long.txt", std::string(5000, 'x') + "\n");
  in->set_list_file(dir.Sub("long.txt"));
  CHECK_THAT(std::string(CheckInputsAtSubmit(spec).message()),
             Catch::Contains("line 1 is longer than 4096 bytes"));
  in->set_list_file(dir.Sub("list.txt"));
  const absl::Status s = CheckInputsAtSubmit(
      spec, [] { return false; }, /*name_paths=*/true);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  const std::string m(s.message());
  CHECK_THAT(m, Catch::StartsWith("input 'images': 25 of the 26 paths that list_file " +
                                  dir.Sub("list.txt") + " names do not exist on the master"));
  CHECK_THAT(m, Catch::Contains("line 3: " + dir.Sub("img/gone0.png")));
  CHECK_THAT(m, Catch::Contains("line 22: " + dir.Sub("img/gone19.png")));
  CHECK_THAT(m, Catch::Contains("... and 5 more"));
  // The master, reading with its own rights, never quotes a line of the file: a list_file
  // naming a key would otherwise hand the key to the submitter.
  dir.Write("secret.key", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n");
  in->set_list_file(dir.Sub("secret.key"));
  const std::string quiet(CheckInputsAtSubmit(spec).message());
  CHECK_THAT(quiet, Catch::Contains("line 2"));
  CHECK(quiet.find("MIGHAgEAsecret") == std::string::npos);
  CHECK(quiet.find("BEGIN") == std::string::npos);
  in->set_list_file(dir.Sub("list.txt"));
  dir.Write("list.txt", "# nothing\n\n");
  CHECK_THAT(std::string(CheckInputsAtSubmit(spec).message()), Catch::Contains("lists no paths"));
}

}  // namespace
}  // namespace prs::master

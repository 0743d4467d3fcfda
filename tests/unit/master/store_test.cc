#include "master/store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

// The tables as a master from before tabular inputs created them.
constexpr char kOldSchema[] = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE jobs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE, spec BLOB NOT NULL,
  snapshot BLOB NOT NULL, state INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',
  first_error TEXT NOT NULL DEFAULT '', submit_ms INTEGER NOT NULL DEFAULT 0,
  start_ms INTEGER NOT NULL DEFAULT 0, end_ms INTEGER NOT NULL DEFAULT 0,
  mb_created INTEGER NOT NULL DEFAULT 0, listing_done INTEGER NOT NULL DEFAULT 0,
  items_total INTEGER NOT NULL DEFAULT 0, mb_processed INTEGER NOT NULL DEFAULT 0,
  mb_failed INTEGER NOT NULL DEFAULT 0, items_succeeded INTEGER NOT NULL DEFAULT 0,
  items_failed INTEGER NOT NULL DEFAULT 0, rows_written INTEGER NOT NULL DEFAULT 0,
  retries INTEGER NOT NULL DEFAULT 0, output_length INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tasks(
  job_seq INTEGER NOT NULL, task_id INTEGER NOT NULL, items BLOB NOT NULL,
  item_count INTEGER NOT NULL, state INTEGER NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(job_seq, task_id)) WITHOUT ROWID;
CREATE TABLE attempts(
  job_seq INTEGER NOT NULL, task_id INTEGER NOT NULL, attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL, node_id TEXT NOT NULL, result BLOB NOT NULL);
INSERT INTO jobs(job_id, spec, snapshot, state, mb_created, items_total)
  VALUES('old-1', x'', x'', 2, 3, 30);
INSERT INTO tasks VALUES(1, 0, 'a', 10, 2, 1), (1, 1, 'b', 10, 0, 0), (1, 2, 'c', 10, 0, 0);
)sql";

TEST_CASE("a database from before tabular inputs is migrated and its listing resumes in place") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("state.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, kOldSchema, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  for (int open = 0; open < 2; ++open) {  // the second open finds the new schema
    auto store = Store::Open(path);
    REQUIRE(store.ok());
    auto jobs = (*store)->LoadJobs();
    REQUIRE(jobs.ok());
    REQUIRE(jobs->size() == 1);
    const StoredJob& job = jobs->front();
    CHECK(job.listed == 3);        // every old task came from the lister
    CHECK(job.output_started);     // older jobs made their output at submit
    CHECK(job.output_id.empty());  // of unknown identity
    CHECK(job.input_fingerprint.empty());
    CHECK(job.reused_from.empty());
    CHECK(job.next_task_id == 3);
    CHECK(job.plans_pending == 0);
    CHECK_FALSE(job.groups_done);
    auto task = (*store)->GetTask(job.seq, 1);
    REQUIRE(task.ok());
    CHECK(task->kind == TaskKind::kRun);
    CHECK(task->item_count == 10);
  }
}

TEST_CASE("a task id used twice is an error, not a silent skip") {
  prs::testing::TempDir dir;
  auto store = Store::Open(dir.Sub("state.db"));
  REQUIRE(store.ok());
  auto job = (*store)->CreateJob(v1::JobSpec(), v1::SourceSnapshot(), 0, "alice");
  REQUIRE(job.ok());
  NewTask t;
  t.task_id = 7;
  t.items = {"/a"};
  t.item_count = 1;
  REQUIRE((*store)->InsertTasks(job->seq, {t}, TaskSource::kLister, false).ok());
  CHECK_FALSE((*store)->InsertTasks(job->seq, {t}, TaskSource::kLister, false).ok());
  auto loaded = (*store)->LoadJob(job->seq);
  REQUIRE(loaded.ok());
  CHECK(loaded->counts.mini_batches_created() == 1);
  CHECK(loaded->listed == 1);
}

TEST_CASE("a second store on one database is refused while the first is open") {
  prs::testing::TempDir dir;
  const std::string path = dir.Sub("state.db");
  auto first = Store::Open(path);
  REQUIRE(first.ok());
  auto second = Store::Open(path);  // waits out the 5 s busy timeout
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(second.status().message()),
             Catch::Contains("is in use by another prs-master (or prs run)"));
  first->reset();
  CHECK(Store::Open(path).ok());  // the first closed: free again
}

TEST_CASE("kept statements give the same answers at each use") {
  prs::testing::TempDir dir;
  auto store = Store::Open(dir.Sub("state.db"));
  REQUIRE(store.ok());
  v1::JobSpec spec;
  spec.set_name("kept");
  for (int i = 0; i < 3; ++i) {
    auto job = (*store)->CreateJob(spec, v1::SourceSnapshot(), 1000 + i, "local");
    REQUIRE(job.ok());
    CHECK(job->job_id == "kept-" + std::to_string(i + 1));
  }
  auto jobs = (*store)->LoadJobs();
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 3);
  CHECK_FALSE((*store)->IsJobOutput("1:2"));
  REQUIRE((*store)->SetOutputStarted(jobs->at(1).seq, "1:2").ok());
  CHECK((*store)->IsJobOutput("1:2"));
  CHECK((*store)->IsJobOutput("1:2"));  // the kept statement, reset after its last use
}

}  // namespace
}  // namespace prs::master

#include "master/job_manager.h"

#include <sys/stat.h>

#include <sys/xattr.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/snapshot.h"
#include "master/log_tree_writer.h"
#include "master/partitioner.h"
#include "tests/unit/job_request.h"
#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

using prs::testing::TempDir;

using prs::testing::MakeRequest;

struct Fixture {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<JobManager> manager;

  void Open() {
    JobManagerOptions o;
    o.state_dir = dir.Sub("state");
    o.agent_timeout = absl::Seconds(10);
    manager.reset();
    auto m = JobManager::Create(o, &clock);
    REQUIRE(m.ok());
    manager = *std::move(m);
  }

  std::string Agent(const std::string& node) {
    v1::RegisterAgentRequest r;
    r.set_node_id(node);
    auto resp = manager->RegisterAgent(r);
    REQUIRE(resp.ok());
    return resp->agent_id();
  }

  v1::JobStatus WaitListed(const std::string& job_id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      auto st = manager->GetJob(job_id);
      REQUIRE(st.ok());
      if (st->counts().listing_done() || absl::Now() > deadline) return *st;
      absl::SleepFor(absl::Milliseconds(5));  // polling the lister thread
    }
  }

  // Submits `req` and waits until its inputs are listed; returns the job id.
  std::string SubmitListed(const v1::SubmitJobRequest& req) {
    auto sub = manager->Submit(req);
    REQUIRE(sub.ok());
    WaitListed(sub->job_id());
    return sub->job_id();
  }

  std::vector<v1::Task> Pull(const std::string& agent, int n) {
    v1::PullTasksRequest req;
    req.set_agent_id(agent);
    req.set_max_tasks(n);
    auto resp = manager->TryPull(req);
    REQUIRE(resp.ok());
    return {resp->tasks().begin(), resp->tasks().end()};
  }

  // Reports `task` as run() returning one line per item.
  bool Done(const std::string& agent, const v1::Task& task) {
    v1::ReportResultsRequest req;
    req.set_agent_id(agent);
    auto* r = req.add_results();
    r->set_job_id(task.job_id());
    r->set_task_id(task.task_id());
    r->set_lease_id(task.lease_id());
    r->set_status(v1::RUN_DONE);
    r->set_items_succeeded(task.items_size());
    std::string rows;
    for (const auto& item : task.items()) rows += item + "\n";
    r->set_rows(rows);
    r->set_row_count(task.items_size());
    auto resp = manager->Report(req);
    REQUIRE(resp.ok());
    return resp->accepted(0);
  }

  bool Fail(const std::string& agent, const v1::Task& task, v1::AttemptStatus status) {
    v1::ReportResultsRequest req;
    req.set_agent_id(agent);
    auto* r = req.add_results();
    r->set_job_id(task.job_id());
    r->set_task_id(task.task_id());
    r->set_lease_id(task.lease_id());
    r->set_status(status);
    r->set_error("ValueError: bad input");
    auto resp = manager->Report(req);
    REQUIRE(resp.ok());
    return resp->accepted(0);
  }

  std::vector<std::string> OutputLines() {
    std::ifstream in(dir.Sub("out/rows.txt"));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
};

TEST_CASE("a job runs to SUCCEEDED with each row written once") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 10, 3));
  REQUIRE(sub.ok());
  CHECK(sub->job_id() == "unit-job-1");
  auto st = f.WaitListed(sub->job_id());
  CHECK(st.counts().mini_batches_created() == 4);
  CHECK(st.counts().items_total() == 10);
  CHECK(st.state() == v1::QUEUED);

  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 10);
  REQUIRE(tasks.size() == 4);
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::RUNNING);
  for (const auto& t : tasks) CHECK(f.Done(a, t));
  // A duplicate report of a completed mini-batch writes nothing.
  CHECK_FALSE(f.Done(a, tasks[0]));

  st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_succeeded() == 10);
  CHECK(st.counts().rows_written() == 10);
  auto lines = f.OutputLines();
  CHECK(lines.size() == 10);
  std::set<std::string> unique(lines.begin(), lines.end());
  CHECK(unique.size() == 10);
}

TEST_CASE("mini-batches given back unrun are leased again, no try counted") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 6, 1));
  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 10);
  REQUIRE(tasks.size() == 6);
  // The agent keeps two and gives the rest back (it switched to this job
  // with more than its queue takes).
  for (size_t i = 2; i < tasks.size(); ++i) CHECK(f.Fail(a, tasks[i], v1::RELEASED));
  for (size_t i = 0; i < 2; ++i) CHECK(f.Done(a, tasks[i]));
  auto again = f.Pull(a, 10);
  REQUIRE(again.size() == 4);
  for (const auto& t : again) {
    CHECK(t.task_id() >= 2);
    CHECK(t.attempt() == 1);  // RELEASED is no try
    CHECK(f.Done(a, t));
  }
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().retries() == 0);
  CHECK(f.OutputLines().size() == 6);
}

TEST_CASE("a pull from an agent whose job ended answers at once: stop it") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 2, 1));
  const std::string a = f.Agent("n1");
  v1::PullTasksRequest req;
  req.set_agent_id(a);
  req.set_max_tasks(10);
  req.set_job_id(job_id);
  auto running = f.manager->TryPull(req);
  REQUIRE(running.ok());
  CHECK(running->stop_job_ids().empty());
  REQUIRE(running->tasks_size() == 2);
  for (const auto& t : running->tasks()) CHECK(f.Done(a, t));
  REQUIRE(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
  auto ended = f.manager->TryPull(req);
  REQUIRE(ended.ok());
  REQUIRE(ended->stop_job_ids_size() == 1);
  CHECK(ended->stop_job_ids(0) == job_id);
  CHECK(ended->tasks().empty());
  req.set_job_id("no-such-job-9");
  ended = f.manager->TryPull(req);
  REQUIRE(ended.ok());
  CHECK(ended->stop_job_ids_size() == 1);
  req.clear_job_id();
  ended = f.manager->TryPull(req);
  REQUIRE(ended.ok());
  CHECK(ended->stop_job_ids().empty());
}

TEST_CASE("a report with a stale or foreign lease is rejected and writes nothing") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 2, 1));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1"), b = f.Agent("n2");
  auto tasks = f.Pull(a, 1);
  REQUIRE(tasks.size() == 1);
  v1::Task stale = tasks[0];
  stale.set_lease_id(stale.lease_id() + "0");
  CHECK_FALSE(f.Done(a, stale));
  CHECK_FALSE(f.Done(b, tasks[0]));  // b does not hold the lease
  CHECK(f.OutputLines().empty());
  CHECK(f.Done(a, tasks[0]));
  CHECK(f.OutputLines().size() == 1);
}

TEST_CASE("a failing mini-batch is retried up to run_max_try, then its items fail") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 1, 1);
  req.mutable_spec()->set_error_threshold(0);
  auto sub = f.manager->Submit(req);
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto t1 = f.Pull(a, 1);
  REQUIRE(t1.size() == 1);
  CHECK(t1[0].attempt() == 1);
  CHECK(f.Fail(a, t1[0], v1::RUN_EXCEPTION));
  auto st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::RUNNING);
  CHECK(st.counts().retries() == 1);
  auto t2 = f.Pull(a, 1);
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].attempt() == 2);
  CHECK(f.Fail(a, t2[0], v1::RUN_TIMEOUT));
  st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::FAILED);
  CHECK(st.counts().mini_batches_failed() == 1);
  CHECK(st.counts().items_failed() == 1);
  CHECK_THAT(st.reason(),
             Catch::Contains("error_threshold exceeded: 1 failed items > error_threshold 0"));
  CHECK_THAT(st.reason(), Catch::Contains("ValueError: bad input"));
}

TEST_CASE("an entry script that cannot load fails the job at once") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 3, 1));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 1);
  REQUIRE(t.size() == 1);
  CHECK(f.Fail(a, t[0], v1::LOAD_FAILED));
  auto st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains("workers cannot start: "));
}

TEST_CASE("a silent agent is lost: its leases go back with the try counted") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 2, 1));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto ta = f.Pull(a, 2);
  REQUIRE(ta.size() == 2);
  f.clock.Advance(absl::Seconds(11));
  const std::string b = f.Agent("n2");
  f.manager->Tick();
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  CHECK(f.manager->Heartbeat(hb).status().code() == absl::StatusCode::kNotFound);
  v1::ReportResultsRequest late;
  late.set_agent_id(a);
  CHECK(f.manager->Report(late).status().code() == absl::StatusCode::kNotFound);
  auto tb = f.Pull(b, 2);
  REQUIRE(tb.size() == 2);
  CHECK(tb[0].attempt() == 2);
  for (const auto& t : tb) CHECK(f.Done(b, t));
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::SUCCEEDED);
  CHECK(f.OutputLines().size() == 2);
}

TEST_CASE("cancel ends the job and later reports are rejected") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 4, 1));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 2);
  auto st = f.manager->Cancel(sub->job_id());
  REQUIRE(st.ok());
  CHECK(st->state() == v1::CANCELLED);
  CHECK_FALSE(f.Done(a, t[0]));
  CHECK(f.Pull(a, 2).empty());
  CHECK(f.manager->Cancel(sub->job_id()).status().code() == absl::StatusCode::kFailedPrecondition);
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  hb.set_job_id(sub->job_id());
  auto resp = f.manager->Heartbeat(hb);
  REQUIRE(resp.ok());
  REQUIRE(resp->stop_job_ids_size() == 1);
}

TEST_CASE("a restarted master cuts uncommitted rows and finishes each row once") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 6, 2));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  std::string a = f.Agent("n1");
  auto t = f.Pull(a, 3);
  REQUIRE(t.size() == 3);
  CHECK(f.Done(a, t[0]));
  // Rows appended without their commit, as if the master died in between.
  // The last of them torn: no line end.
  { std::ofstream(f.dir.Sub("out/rows.txt"), std::ios::app) << "torn row\nhalf a r"; }
  f.Open();  // restart on the same state dir
  CHECK(f.OutputLines().size() == 2);
  auto st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::RUNNING);
  CHECK(st.counts().mini_batches_processed() == 1);
  a = f.Agent("n1");
  auto rest = f.Pull(a, 10);
  REQUIRE(rest.size() == 2);
  for (const auto& r : rest) CHECK(f.Done(a, r));
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::SUCCEEDED);
  auto lines = f.OutputLines();
  CHECK(lines.size() == 6);
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 6);
}

TEST_CASE("a job whose entry script is not in the snapshot is refused and nothing is queued") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 1, 1);
  req.mutable_snapshot()->mutable_files(0)->set_path("other.py");
  auto sub = f.manager->Submit(req);
  CHECK(sub.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(sub.status().message()), Catch::Contains("is not in the snapshot"));
  CHECK(f.manager->ListJobs(10).empty());
}

TEST_CASE("jobs get agents first in, first out, each up to node_count") {
  Fixture f;
  f.Open();
  auto r1 = MakeRequest(f.dir, 4, 1);
  r1.mutable_spec()->set_node_count(1);
  auto j1 = f.manager->Submit(r1);
  REQUIRE(j1.ok());
  f.WaitListed(j1->job_id());
  // A second active job may not write the same output file.
  auto same = f.manager->Submit(MakeRequest(f.dir, 4, 1));
  CHECK(same.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(same.status().message()), Catch::Contains("is being written by job"));
  auto r2 = MakeRequest(f.dir, 4, 1);
  r2.mutable_spec()->set_append_row_file_name("rows2.txt");
  auto j2 = f.manager->Submit(r2);
  REQUIRE(j2.ok());
  f.WaitListed(j2->job_id());
  const std::string a = f.Agent("n1"), b = f.Agent("n2");
  auto ta = f.Pull(a, 1);
  REQUIRE(ta.size() == 1);
  CHECK(ta[0].job_id() == j1->job_id());
  auto tb = f.Pull(b, 1);  // j1 is full at node_count 1: b helps j2
  REQUIRE(tb.size() == 1);
  CHECK(tb[0].job_id() == j2->job_id());
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("resume runs a cancelled job's unfinished and failed mini-batches, each row once") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 6, 1);
  req.mutable_spec()->set_run_max_try(1);
  auto sub = f.manager->Submit(req);
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 3);
  REQUIRE(t.size() == 3);
  CHECK(f.Done(a, t[0]));
  CHECK(f.Fail(a, t[1], v1::RUN_EXCEPTION));  // last try: the mini-batch failed
  CHECK(f.manager->Resume(sub->job_id()).status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(f.manager->Cancel(sub->job_id()).ok());
  CHECK_FALSE(f.Done(a, t[2]));  // its lease died with the cancel

  auto st = f.manager->Resume(sub->job_id());
  REQUIRE(st.ok());
  CHECK(st->state() == v1::QUEUED);
  CHECK(st->counts().mini_batches_failed() == 0);
  CHECK(st->counts().mini_batches_processed() == 1);
  auto rest = f.Pull(a, 10);
  REQUIRE(rest.size() == 5);  // the failed one, the cancelled lease, and three never run
  for (const auto& r : rest) CHECK(f.Done(a, r));
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::SUCCEEDED);
  auto lines = f.OutputLines();
  CHECK(lines.size() == 6);
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 6);
  CHECK(f.manager->Resume(sub->job_id()).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("allowed_failed_count and allowed_failed_percent fail the job with the reason") {
  SECTION("count") {
    Fixture f;
    f.Open();
    auto req = MakeRequest(f.dir, 4, 1);
    req.mutable_spec()->set_run_max_try(1);
    req.mutable_spec()->set_allowed_failed_count(1);
    auto sub = f.manager->Submit(req);
    REQUIRE(sub.ok());
    f.WaitListed(sub->job_id());
    const std::string a = f.Agent("n1");
    auto t = f.Pull(a, 4);
    REQUIRE(t.size() == 4);
    CHECK(f.Fail(a, t[0], v1::RUN_EXCEPTION));
    CHECK(f.manager->GetJob(sub->job_id())->state() == v1::RUNNING);
    CHECK(f.Fail(a, t[1], v1::WORKER_DIED));
    auto st = *f.manager->GetJob(sub->job_id());
    CHECK(st.state() == v1::FAILED);
    CHECK_THAT(st.reason(),
               Catch::Contains("allowed_failed_count exceeded: 2 failed mini-batches"));
    CHECK_FALSE(f.Done(a, t[2]));  // the rest of the work was cancelled
  }
  SECTION("percent") {
    Fixture f;
    f.Open();
    auto req = MakeRequest(f.dir, 4, 1);
    req.mutable_spec()->set_run_max_try(1);
    req.mutable_spec()->set_allowed_failed_percent(25);
    auto sub = f.manager->Submit(req);
    REQUIRE(sub.ok());
    f.WaitListed(sub->job_id());
    const std::string a = f.Agent("n1");
    auto t = f.Pull(a, 4);
    REQUIRE(t.size() == 4);
    CHECK(f.Fail(a, t[0], v1::RUN_EXCEPTION));  // 1 of 4 = 25%: allowed
    CHECK(f.manager->GetJob(sub->job_id())->state() == v1::RUNNING);
    CHECK(f.Fail(a, t[1], v1::RUN_EXCEPTION));  // 2 of 4 = 50%
    auto st = *f.manager->GetJob(sub->job_id());
    CHECK(st.state() == v1::FAILED);
    CHECK_THAT(st.reason(), Catch::Contains("allowed_failed_percent exceeded: 2 of 4"));
  }
}

TEST_CASE("a lease whose PullTasks reply never reached the agent goes back after the grace") {
  Fixture f;
  f.Open();
  auto sub = f.manager->Submit(MakeRequest(f.dir, 2, 1));
  REQUIRE(sub.ok());
  f.WaitListed(sub->job_id());
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 2);
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  hb.add_held_lease_ids(t[0].lease_id());  // t[1]'s reply was "lost"
  REQUIRE(f.manager->Heartbeat(hb).ok());
  CHECK(f.Pull(a, 2).empty());  // too young to be judged lost
  f.clock.Advance(absl::Seconds(31));
  REQUIRE(f.manager->Heartbeat(hb).ok());
  auto again = f.Pull(a, 2);
  REQUIRE(again.size() == 1);
  CHECK(again[0].task_id() == t[1].task_id());
  CHECK(again[0].attempt() == 1);  // the try was not counted
  CHECK(f.Done(a, t[0]));
  CHECK(f.Done(a, again[0]));
  CHECK_FALSE(f.Done(a, t[1]));  // the old lease is void
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::SUCCEEDED);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("a second live agent with the same node id is refused") {
  Fixture f;
  f.Open();
  v1::RegisterAgentRequest r;
  r.set_node_id("n1");
  r.set_hostname("host-a");
  r.set_pid(100);
  REQUIRE(f.manager->RegisterAgent(r).ok());
  r.set_pid(200);
  auto dup = f.manager->RegisterAgent(r);
  CHECK(dup.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK_THAT(std::string(dup.status().message()),
             Catch::Contains("give each agent its own --node-id"));
  r.set_node_id("n2");
  CHECK(f.manager->RegisterAgent(r).ok());
  // Once the first is declared lost, its node id is free again.
  f.clock.Advance(absl::Seconds(11));
  f.manager->Tick();
  r.set_node_id("n1");
  CHECK(f.manager->RegisterAgent(r).ok());
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("resume is refused when a later job has written the same output since") {
  Fixture f;
  f.Open();
  auto a = f.manager->Submit(MakeRequest(f.dir, 4, 1));
  REQUIRE(a.ok());
  f.WaitListed(a->job_id());
  const std::string agent = f.Agent("n1");
  auto t = f.Pull(agent, 1);
  REQUIRE(t.size() == 1);
  CHECK(f.Done(agent, t[0]));
  REQUIRE(f.manager->Cancel(a->job_id()).ok());
  auto b = f.manager->Submit(MakeRequest(f.dir, 4, 1));  // same output file
  REQUIRE(b.ok());
  f.WaitListed(b->job_id());
  // b moves a's rows aside when its first rows come, not before.
  CHECK(f.manager->GetJob(b->job_id())->notes().empty());
  auto tb = f.Pull(agent, 1);
  REQUIRE(tb.size() == 1);
  CHECK(f.Done(agent, tb[0]));
  auto notes = f.manager->GetJob(b->job_id())->notes();
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("was moved to"));
  auto busy = f.manager->Resume(a->job_id());  // b is writing it now
  CHECK_THAT(std::string(busy.status().message()), Catch::Contains("is being written by job"));
  REQUIRE(f.manager->Cancel(b->job_id()).ok());
  auto resumed = f.manager->Resume(a->job_id());  // b has ended, but its rows are in the file
  CHECK(resumed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(resumed.status().message()), Catch::Contains("has been written by job"));
}

// The format field of a CSV file's descriptors: "csv:SIZE:MTIME_NS".
std::string Stamped(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return absl::StrCat("csv", ":", st.st_size, ":",
                      int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
}

// A tabular job over `dir`/table, in bytes mode with a size of `size` bytes.
v1::SubmitJobRequest TabularRequest(const TempDir& dir, int64_t size) {
  v1::SubmitJobRequest req = MakeRequest(dir, 0, 1);
  auto* spec = req.mutable_spec();
  spec->mutable_inputs(0)->set_type("tabular");
  spec->mutable_inputs(0)->set_path(dir.Sub("table"));
  spec->set_mini_batch_unit(v1::MINI_BATCH_BYTES);
  spec->set_mini_batch_size(size);
  spec->set_mini_batch_size_text(absl::StrCat(size));
  return req;
}

// Reports `task` done as a worker does: `records` read, `ok` of them
// returned, one row each, and the header line.
bool Answer(Fixture& f, const std::string& agent, const v1::Task& task, int64_t records, int64_t ok,
            const std::string& rows, const std::string& header = "") {
  v1::ReportResultsRequest req;
  req.set_agent_id(agent);
  auto* r = req.add_results();
  r->set_job_id(task.job_id());
  r->set_task_id(task.task_id());
  r->set_lease_id(task.lease_id());
  r->set_status(v1::RUN_DONE);
  r->set_items_total(records);
  r->set_items_succeeded(ok);
  r->set_rows(rows);
  r->set_row_count(ok);
  r->set_header(header);
  auto resp = f.manager->Report(req);
  REQUIRE(resp.ok());
  return resp->accepted(0);
}

TEST_CASE("a tabular plan becomes record-aligned mini-batches; the header is written once") {
  Fixture f;
  f.Open();
  f.dir.Write("table/big.csv", "id\n" + std::string(60, 'x'));
  f.dir.Write("table/small.csv", "id\n1\n2\n");
  auto req = TabularRequest(f.dir, 50);
  req.mutable_spec()->mutable_append_row_format()->set_delimiter(",");
  req.mutable_spec()->mutable_append_row_format()->set_header(true);
  const std::string job_id = f.SubmitListed(req);
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.counts().mini_batches_created() == 2);
  CHECK(st.counts().items_total() == 0);  // nothing read yet

  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 10);
  REQUIRE(tasks.size() == 2);
  REQUIRE(tasks[0].items(0) == "plan\tbytes\t" + Stamped(f.dir.Sub("table/big.csv")) + "\t50\t" +
                                   f.dir.Sub("table/big.csv"));
  // The plan's answer is not output: it makes two mini-batches of 2 and 3 records.
  CHECK(Answer(f, a, tasks[0], 0, 0, "3\t40\t2\n40\t63\t3\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::RUNNING);
  CHECK(st.counts().mini_batches_created() == 4);
  CHECK(st.counts().plans() == 1);
  CHECK(st.counts().items_total() == 5);
  CHECK(f.OutputLines().empty());

  // The small file: its 2 records are known once it ran; one failed.
  CHECK(Answer(f, a, tasks[1], 2, 1, "1\n", "id\n"));
  auto ranges = f.Pull(a, 10);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].items(0) == "range\t" + Stamped(f.dir.Sub("table/big.csv")) + "\t3@0\t40@2\t" +
                                  f.dir.Sub("table/big.csv"));
  CHECK(ranges[1].items(0) == "range\t" + Stamped(f.dir.Sub("table/big.csv")) + "\t40@2\t63@5\t" +
                                  f.dir.Sub("table/big.csv"));
  CHECK(Answer(f, a, ranges[0], 2, 2, "a\nb\n", "id\n"));
  CHECK(Answer(f, a, ranges[1], 3, 3, "c\nd\ne\n", "id\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_total() == 7);
  CHECK(st.counts().items_succeeded() == 6);
  CHECK(st.counts().items_failed() == 1);
  CHECK(st.counts().rows_written() == 6);
  CHECK(f.OutputLines() == std::vector<std::string>{"id", "1", "a", "b", "c", "d", "e"});
}

TEST_CASE("a tabular plan that keeps failing counts one failed item") {
  Fixture f;
  f.Open();
  f.dir.Write("table/big.csv", "id\n" + std::string(60, 'x'));
  auto req = TabularRequest(f.dir, 50);
  req.mutable_spec()->set_error_threshold(0);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  for (int i = 0; i < 2; ++i) {  // run_max_try is 2
    auto t = f.Pull(a, 1);
    REQUIRE(t.size() == 1);
    CHECK(f.Fail(a, t[0], v1::RUN_EXCEPTION));
  }
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK(st.counts().items_failed() == 1);
  CHECK(st.counts().mini_batches_failed() == 1);
  CHECK_THAT(st.reason(), Catch::Contains("error_threshold exceeded: 1 failed items"));
}

TEST_CASE("partition_keys: one mini-batch per key combination over all files, after every plan") {
  Fixture f;
  f.Open();
  f.dir.Write("table/a.csv", "k,v\n1,x\n");
  f.dir.Write("table/b.csv", "k,v\n1,y\n2,z\n");
  auto req = TabularRequest(f.dir, 50);
  req.mutable_spec()->add_partition_keys("k");
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto plans = f.Pull(a, 10);
  REQUIRE(plans.size() == 2);
  CHECK(plans[0].items(0) == "plan\tkeys\t" + Stamped(f.dir.Sub("table/a.csv")) + "\t[\"k\"]\t" +
                                 f.dir.Sub("table/a.csv"));
  CHECK(Answer(f, a, plans[0], 0, 0, "1\t[\"1\"]\n"));
  // One plan is not enough: a key may be in any file.
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::RUNNING);
  CHECK(f.Pull(a, 10).empty());
  CHECK(Answer(f, a, plans[1], 0, 0, "1\t[\"1\"]\n1\t[\"2\"]\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.counts().mini_batches_created() == 4);
  CHECK(st.counts().items_total() == 3);
  auto groups = f.Pull(a, 10);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].items_size() == 2);
  CHECK(groups[0].items(0) == "group\t" + Stamped(f.dir.Sub("table/a.csv")) +
                                  "\t[\"k\"]\t[\"1\"]\t" + f.dir.Sub("table/a.csv"));
  CHECK(groups[0].items(1) == "group\t" + Stamped(f.dir.Sub("table/b.csv")) +
                                  "\t[\"k\"]\t[\"1\"]\t" + f.dir.Sub("table/b.csv"));
  REQUIRE(groups[1].items_size() == 1);
  CHECK(groups[1].items(0) == "group\t" + Stamped(f.dir.Sub("table/b.csv")) +
                                  "\t[\"k\"]\t[\"2\"]\t" + f.dir.Sub("table/b.csv"));
  CHECK(Answer(f, a, groups[0], 2, 2, "x\ny\n"));
  CHECK(Answer(f, a, groups[1], 1, 1, "z\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_succeeded() == 3);
  CHECK(f.OutputLines() == std::vector<std::string>{"x", "y", "z"});
}

TEST_CASE("a restarted master keeps plan-made mini-batches and lists no file twice") {
  Fixture f;
  f.Open();
  f.dir.Write("table/big.csv", "id\n" + std::string(60, 'x'));
  f.dir.Write("table/small.csv", "id\n1\n");
  const std::string job_id = f.SubmitListed(TabularRequest(f.dir, 50));
  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 10);
  REQUIRE(tasks.size() == 2);
  CHECK(Answer(f, a, tasks[0], 0, 0, "3\t40\t2\n40\t63\t3\n"));
  f.Open();  // restart
  auto st = f.WaitListed(job_id);
  CHECK(st.counts().mini_batches_created() == 4);
  const std::string b = f.Agent("n1");
  auto again = f.Pull(b, 10);
  REQUIRE(again.size() == 3);  // small.csv (its lease was lost) and the two ranges
  for (const auto& t : again) CHECK(Answer(f, b, t, 1, 1, absl::StrCat(t.task_id(), "\n")));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().mini_batches_created() == 4);
  CHECK(f.OutputLines().size() == 3);
}

TEST_CASE("a failed tabular file of unknown records counts one item until a resume reads it") {
  Fixture f;
  f.Open();
  f.dir.Write("table/small.csv", "id\n1\n2\n");
  auto req = TabularRequest(f.dir, 50);
  req.mutable_spec()->set_allowed_failed_count(0);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  for (int i = 0; i < 2; ++i) {
    auto t = f.Pull(a, 1);
    REQUIRE(t.size() == 1);
    CHECK(f.Fail(a, t[0], v1::WORKER_DIED));  // no record count
  }
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK(st.counts().items_failed() == 1);
  CHECK(st.counts().items_total() == 1);
  REQUIRE(f.manager->Resume(job_id).ok());
  st = *f.manager->GetJob(job_id);
  CHECK(st.counts().items_failed() == 0);
  CHECK(st.counts().items_total() == 0);
  auto t = f.Pull(a, 1);
  REQUIRE(t.size() == 1);
  CHECK(Answer(f, a, t[0], 2, 2, "1\n2\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_total() == 2);
  CHECK(st.counts().items_succeeded() == 2);
  CHECK(st.counts().items_failed() == 0);
}

TEST_CASE("allowed_failed_percent waits for the mini-batches that plans make") {
  Fixture f;
  f.Open();
  f.dir.Write("table/a.csv", "id\n1\n");
  f.dir.Write("table/big.csv", "id\n" + std::string(60, 'x'));
  auto req = TabularRequest(f.dir, 50);
  req.mutable_spec()->set_allowed_failed_percent(10);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 2);
  REQUIRE(tasks.size() == 2);
  const v1::Task plan_task = tasks[1];
  REQUIRE(plan_task.items(0).rfind("plan\t", 0) == 0);
  CHECK(f.Fail(a, tasks[0], v1::RUN_EXCEPTION));  // a.csv, try 1 of 2
  tasks = f.Pull(a, 1);
  REQUIRE(tasks.size() == 1);
  CHECK(f.Fail(a, tasks[0], v1::RUN_EXCEPTION));  // a.csv failed for good: 1 of 2 so far
  CHECK(f.manager->GetJob(job_id)->state() == v1::RUNNING);
  // The plan makes 20 more mini-batches: 1 failed of 22 is within 10%.
  std::string plan;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&plan, 3 + i, "\t", 4 + i, "\t1\n");
  CHECK(Answer(f, a, plan_task, 0, 0, plan));
  for (const auto& t : f.Pull(a, 100)) CHECK(Answer(f, a, t, 1, 1, "r\n"));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().mini_batches_created() == 22);
  CHECK(st.counts().mini_batches_failed() == 1);
}

TEST_CASE("a file planned in chunks: each chunk's ranges run while the rest is planned") {
  Fixture f;
  f.Open();
  f.dir.Write("table/big.csv", "id\n" + std::string(60, 'x'));
  const std::string job_id = f.SubmitListed(TabularRequest(f.dir, 10));
  const std::string a = f.Agent("n1");
  auto tasks = f.Pull(a, 1);
  REQUIRE(tasks.size() == 1);
  // The first chunk: two ranges, then the rest from byte 23.
  CHECK(Answer(f, a, tasks[0], 0, 0, "3\t13\t1\n13\t23\t1\nnext\t23\n"));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.counts().plans() == 2);
  CHECK(st.counts().mini_batches_created() == 4);
  auto next = f.Pull(a, 1);  // the rest of the plan comes first
  REQUIRE(next.size() == 1);
  const std::string big = f.dir.Sub("table/big.csv");
  CHECK(next[0].items(0) == "plan\tbytes\t" + Stamped(big) + "\t10@23@2\t" + big);
  // A "next" that does not continue where the ranges end is refused.
  CHECK(Answer(f, a, next[0], 0, 0, "23\t43\t2\nnext\t50\n"));
  st = *f.manager->GetJob(job_id);
  CHECK(st.counts().mini_batches_created() == 4);
  CHECK(st.counts().retries() == 1);
  // Tried again (from the back of the queue, behind the first two ranges).
  auto rest = f.Pull(a, 10);
  REQUIRE(rest.size() == 3);
  CHECK(rest[2].items(0) == "plan\tbytes\t" + Stamped(big) + "\t10@23@2\t" + big);
  CHECK(Answer(f, a, rest[2], 0, 0, "23\t43\t2\n43\t63\t2\n"));
  rest.pop_back();
  for (const auto& t : f.Pull(a, 10)) rest.push_back(t);
  REQUIRE(rest.size() == 4);
  for (const auto& t : rest) CHECK(Answer(f, a, t, 1, 1, absl::StrCat(t.task_id(), "\n")));
  st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_total() == 4);  // the worker's counts win over the plan's
  CHECK(f.OutputLines().size() == 4);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("a mini-batch too large for a message fails at once, naming its first input") {
  Fixture f;
  JobManagerOptions o;
  o.state_dir = f.dir.Sub("state");
  o.max_task_bytes = 300;
  auto m = JobManager::Create(o, &f.clock);
  REQUIRE(m.ok());
  f.manager = *std::move(m);
  auto req = MakeRequest(f.dir, 0, 1);
  f.dir.Write("data/small.txt", "1");
  f.dir.Write("data/" + std::string(200, 'x') + ".txt", "2");
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 1);  // the long-named one cannot be sent
  CHECK(f.Done(a, t[0]));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.counts().mini_batches_failed() == 1);
  CHECK(st.counts().items_failed() == 1);
  CHECK(st.first_error().find("more than one message carries") != std::string::npos);
  CHECK(st.first_error().find("first input: " + f.dir.Sub("data/xxx")) != std::string::npos);
}

TEST_CASE("a PullTasks reply stops at its byte budget; the rest come with the next pull") {
  Fixture f;
  JobManagerOptions o;
  o.state_dir = f.dir.Sub("state");
  o.max_pull_reply_bytes = 200;
  auto m = JobManager::Create(o, &f.clock);
  REQUIRE(m.ok());
  f.manager = *std::move(m);
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 4, 1));
  const std::string a = f.Agent("n1");
  std::set<int64_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto t = f.Pull(a, 4);
    REQUIRE(t.size() == 1);
    CHECK(t[0].attempt() == 1);
    seen.insert(t[0].task_id());
    CHECK(f.Done(a, t[0]));
  }
  CHECK(seen.size() == 4);
  CHECK(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
}

TEST_CASE("a lease that never reaches its agent again and again fails the mini-batch") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 1, 1);
  req.mutable_spec()->set_run_max_try(1);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  v1::HeartbeatRequest hb;  // holds nothing: every reply is "lost"
  hb.set_agent_id(a);
  for (int i = 0; i < 3; ++i) {
    auto t = f.Pull(a, 1);
    REQUIRE(t.size() == 1);
    CHECK(t[0].attempt() == 1);  // the first losses count no try
    f.clock.Advance(absl::Seconds(31));
    REQUIRE(f.manager->Heartbeat(hb).ok());
  }
  f.manager->Tick();  // the ticker fails it, outside the heartbeat
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);  // nothing succeeded
  CHECK(st.counts().mini_batches_failed() == 1);
  CHECK(st.first_error().find("never reached it (3 times)") != std::string::npos);
  CHECK(st.first_error().find("first input: " + f.dir.Sub("data/f0000.txt")) != std::string::npos);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("a job in which no input succeeded fails, whatever the thresholds tolerate") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 4, 2);
  req.mutable_spec()->set_run_max_try(1);  // error_threshold -1: failures are tolerated
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  for (const auto& t : f.Pull(a, 2)) CHECK(f.Fail(a, t, v1::RUN_EXCEPTION));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK(st.reason().rfind("no input succeeded: all 4 items failed, in 2 mini-batches; first "
                          "error: ValueError: bad input",
                          0) == 0);
  // Its job_result.txt says so too.
  std::ifstream in(f.dir.Sub("state/jobs/" + job_id + "/logs/job_result.txt"));
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().rfind("FAILED\nReason: no input succeeded", 0) == 0);
}

TEST_CASE("one succeeded input is enough for a tolerant job to succeed") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 4, 2);
  req.mutable_spec()->set_run_max_try(1);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 2);
  CHECK(f.Fail(a, t[0], v1::RUN_EXCEPTION));
  CHECK(f.Done(a, t[1]));
  CHECK(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

namespace fs = std::filesystem;

TEST_CASE("an output file deleted under a running job fails the job at its next commit") {
  for (const bool whole_folder : {false, true}) {
    Fixture f;
    f.Open();
    const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 3, 1));
    const std::string a = f.Agent("n1");
    auto t = f.Pull(a, 3);
    REQUIRE(t.size() == 3);
    CHECK(f.Done(a, t[0]));
    if (whole_folder) {
      fs::remove_all(f.dir.Sub("out"));
    } else {
      fs::remove(f.dir.Sub("out/rows.txt"));
    }
    CHECK(f.Done(a, t[1]));
    auto st = *f.manager->GetJob(job_id);
    CHECK(st.state() == v1::FAILED);
    CHECK_THAT(st.reason(), Catch::Contains("out/rows.txt was deleted while the job ran"));
    CHECK(st.counts().mini_batches_processed() == 1);  // the second was not committed
  }
}

TEST_CASE("an output file replaced under a running job fails the job") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 2, 1));
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  CHECK(f.Done(a, t[0]));
  fs::rename(f.dir.Sub("out/rows.txt"), f.dir.Sub("out/kept.txt"));
  f.dir.Write("out/rows.txt", "someone else's\n");
  CHECK(f.Done(a, t[1]));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains("was moved or replaced while the job ran"));
}

TEST_CASE("a restarted master never pads a cut output file: the job fails with the loss") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 3, 1));
  const std::string a = f.Agent("n1");
  for (const auto& t : f.Pull(a, 2)) CHECK(f.Done(a, t));
  const auto committed = fs::file_size(f.dir.Sub("out/rows.txt"));
  fs::resize_file(f.dir.Sub("out/rows.txt"), 5);
  f.Open();  // the master restarts
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains(absl::StrCat("holds 5 bytes, fewer than the ", committed,
                                                       " bytes of rows committed to it")));
  CHECK(fs::file_size(f.dir.Sub("out/rows.txt")) == 5);
  // The same with the file gone.
  Fixture g;
  g.Open();
  const std::string other = g.SubmitListed(MakeRequest(g.dir, 3, 1));
  const std::string b = g.Agent("n1");
  for (const auto& t : g.Pull(b, 1)) CHECK(g.Done(b, t));
  fs::remove(g.dir.Sub("out/rows.txt"));
  g.Open();
  st = *g.manager->GetJob(other);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains("is gone, and with it the"));
  CHECK_FALSE(fs::exists(g.dir.Sub("out/rows.txt")));
}

TEST_CASE("two spellings of one output file are one output") {
  Fixture f;
  f.Open();
  const std::string first = f.SubmitListed(MakeRequest(f.dir, 2, 1));
  fs::create_directory_symlink(f.dir.Sub("out"), f.dir.Sub("link"));
  for (const std::string& spelled : {f.dir.Sub("out/."), f.dir.Sub("link")}) {
    auto req = MakeRequest(f.dir, 2, 1);
    req.mutable_spec()->set_output(spelled);
    auto refused = f.manager->Submit(req);
    CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("is being written by job " + first));
  }
}

TEST_CASE("a job that never writes leaves an earlier output where it is") {
  Fixture f;
  f.Open();
  f.dir.Write("out/rows.txt", "an earlier job's row\n");
  // As an earlier job of another state folder left it: marked as prs's.
  REQUIRE(::setxattr(f.dir.Sub("out/rows.txt").c_str(), kOutputMarkAttribute, "earlier-1", 9, 0) ==
          0);
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 2, 1));
  REQUIRE(f.manager->Cancel(job_id).ok());
  std::ifstream in(f.dir.Sub("out/rows.txt"));
  std::string line;
  std::getline(in, line);
  CHECK(line == "an earlier job's row");
  int files = 0;
  for (const auto& e : fs::directory_iterator(f.dir.Sub("out"))) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("an output in a system folder is refused at submit") {
  Fixture f;
  f.Open();
  for (const auto& [output, folder] : std::vector<std::pair<std::string, std::string>>{
           {"/etc", "/etc"}, {"/usr/share/prs-out", "/usr"}, {"/", "/"}, {"/proc/self", "/proc"}}) {
    auto req = MakeRequest(f.dir, 1, 1);
    req.mutable_spec()->set_output(output);
    auto refused = f.manager->Submit(req);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("output: " + output + " is in the system folder " + folder));
  }
  CHECK_FALSE(fs::exists("/usr/share/prs-out"));
}

TEST_CASE("a file prs did not make is refused at submit, and left as it is") {
  Fixture f;
  f.Open();
  f.dir.Write("out/rows.txt", "someone's results\n");
  auto refused = f.manager->Submit(MakeRequest(f.dir, 2, 1));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains(f.dir.Sub("out/rows.txt") + " exists and prs did not make it"));
  std::ifstream in(f.dir.Sub("out/rows.txt"));
  std::string line;
  std::getline(in, line);
  CHECK(line == "someone's results");
  CHECK(f.manager->ListJobs(10, [](const std::string&) { return true; }).empty());
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("log records that cannot be written are kept and written at a later flush") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 3, 1));
  const std::string sys = f.dir.Sub("state/jobs/" + job_id + "/logs/sys");
  // Folders in the way: every append fails, as with no file descriptor left.
  fs::create_directories(sys + "/master_role.txt");
  fs::create_directories(sys + "/job_report/processed_mini-batches.csv");
  const std::string a = f.Agent("n1");
  for (const auto& t : f.Pull(a, 3)) CHECK(f.Done(a, t));
  f.manager->Tick();
  f.manager->Tick();
  fs::remove(sys + "/master_role.txt");
  fs::remove(sys + "/job_report/processed_mini-batches.csv");
  f.manager->Tick();
  std::ifstream role(sys + "/master_role.txt");
  std::stringstream text;
  text << role.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains("job submitted"));
  CHECK_THAT(text.str(), Catch::Contains("job SUCCEEDED"));
  std::ifstream csv(sys + "/job_report/processed_mini-batches.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == 4);  // the header and one row per attempt
  CHECK(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("progress_update_timeout fails a job whose agents hold leases and finish nothing") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 4, 1);
  req.mutable_spec()->set_progress_update_timeout(300);
  const std::string job_id = f.SubmitListed(req);
  // Waiting for an agent is no hang: the clock does not run.
  f.clock.Advance(absl::Seconds(1000));
  f.manager->Tick();
  CHECK(f.manager->GetJob(job_id)->state() == v1::QUEUED);
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 2);
  CHECK(f.Done(a, t[0]));
  for (int i = 0; i < 5; ++i) {  // the agent stays alive, its lease stays held
    f.clock.Advance(absl::Seconds(60));
    v1::HeartbeatRequest hb;
    hb.set_agent_id(a);
    hb.add_held_lease_ids(t[1].lease_id());
    REQUIRE(f.manager->Heartbeat(hb).ok());
    f.manager->Tick();
  }
  CHECK(f.manager->GetJob(job_id)->state() == v1::RUNNING);  // 300 s, not more
  f.clock.Advance(absl::Seconds(1));
  v1::HeartbeatRequest hb;
  hb.set_agent_id(a);
  hb.add_held_lease_ids(t[1].lease_id());
  REQUIRE(f.manager->Heartbeat(hb).ok());
  f.manager->Tick();
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::StartsWith("no progress for 300 s (progress_update_timeout): no "
                                            "mini-batch finished, failed or was made, while 1 "
                                            "were leased to n1"));
}

TEST_CASE("first_task_creation_timeout fails a job whose listing makes nothing in time") {
  Fixture f;
  JobManagerOptions o;
  o.state_dir = f.dir.Sub("state");
  o.max_pending_per_job = 0;  // the lister waits before its first mini-batch: a stuck listing
  auto m = JobManager::Create(o, &f.clock);
  REQUIRE(m.ok());
  f.manager = *std::move(m);
  auto req = MakeRequest(f.dir, 2, 1);
  req.mutable_spec()->set_first_task_creation_timeout(600);
  auto sub = f.manager->Submit(req);
  REQUIRE(sub.ok());
  f.clock.Advance(absl::Seconds(599));
  f.manager->Tick();
  CHECK(f.manager->GetJob(sub->job_id())->state() == v1::QUEUED);
  f.clock.Advance(absl::Seconds(2));
  f.manager->Tick();
  auto st = *f.manager->GetJob(sub->job_id());
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::StartsWith("no mini-batch was made within 600 s "
                                            "(first_task_creation_timeout)"));
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

// Runs job `job_id` to SUCCEEDED with one agent.
void RunToSuccess(Fixture& f, const std::string& job_id, const std::string& agent) {
  for (int i = 0; i < 100 && f.manager->GetJob(job_id)->state() != v1::SUCCEEDED; ++i) {
    for (const auto& t : f.Pull(agent, 10)) CHECK(f.Done(agent, t));
  }
  REQUIRE(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
}

TEST_CASE("allow_reuse: an identical job takes the earlier result; any change runs it again") {
  Fixture f;
  f.Open();
  const std::string a = f.Agent("n1");
  auto req = MakeRequest(f.dir, 4, 2);
  req.mutable_spec()->set_allow_reuse(true);
  const std::string first = f.SubmitListed(req);
  RunToSuccess(f, first, a);
  const auto rows = f.OutputLines();
  REQUIRE(rows.size() == 4);

  // The same spec, snapshot and inputs: nothing runs, the result is the first's.
  const std::string second = f.SubmitListed(req);
  auto st = *f.manager->GetJob(second);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.counts().items_succeeded() == 4);
  CHECK(st.output_file() == f.dir.Sub("out/rows.txt"));
  REQUIRE(st.notes_size() == 1);
  CHECK_THAT(st.notes(0), Catch::StartsWith("allow_reuse: the result of job " + first));
  CHECK(f.Pull(a, 10).empty());
  CHECK(f.OutputLines() == rows);  // not moved aside, not rewritten

  // After a restart the reused job still says so.
  f.Open();
  st = *f.manager->GetJob(second);
  CHECK(st.state() == v1::SUCCEEDED);
  CHECK(st.output_file() == f.dir.Sub("out/rows.txt"));
  const std::string a2 = f.Agent("n2");

  // An input changed: it runs.
  f.dir.Write("data/f0001.txt", "changed");
  const std::string third = f.SubmitListed(req);
  CHECK(f.manager->GetJob(third)->state() == v1::QUEUED);
  RunToSuccess(f, third, a2);

  // A changed script runs too, and so does allow_reuse: false.
  auto other_script = req;
  other_script.mutable_snapshot()->mutable_files(0)->set_content("def run(b):\n  return b\n");
  CHECK(f.manager->GetJob(f.SubmitListed(other_script))->state() == v1::QUEUED);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("resume and recovery never cut a file at the output path that is not the job's") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 3, 1));
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 1);
  CHECK(f.Done(a, t[0]));
  REQUIRE(f.manager->Cancel(job_id).ok());
  // Another run (another state folder) moved this job's file aside and wrote its own.
  fs::rename(f.dir.Sub("out/rows.txt"), f.dir.Sub("out/rows.txt.20260101-000000.before-x-1"));
  const std::string theirs = "another run's row 1\nanother run's row 2\n";
  f.dir.Write("out/rows.txt", theirs);
  auto resumed = f.manager->Resume(job_id);
  CHECK_FALSE(resumed.ok());
  CHECK_THAT(std::string(resumed.status().message()),
             Catch::Contains("is not the file this job wrote"));
  CHECK(ReadAll(f.dir.Sub("out/rows.txt")) == theirs);

  // The same at recovery, for a running job.
  Fixture g;
  g.Open();
  const std::string running = g.SubmitListed(MakeRequest(g.dir, 3, 1));
  const std::string b = g.Agent("n1");
  CHECK(g.Done(b, g.Pull(b, 1)[0]));
  fs::remove(g.dir.Sub("out/rows.txt"));
  g.dir.Write("out/rows.txt", theirs);
  g.Open();
  auto st = *g.manager->GetJob(running);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains("is not the file this job wrote"));
  CHECK(ReadAll(g.dir.Sub("out/rows.txt")) == theirs);
}

TEST_CASE("an output file written to by something else fails the job at the next commit") {
  Fixture f;
  f.Open();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 3, 1));
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  CHECK(f.Done(a, t[0]));
  {
    std::ofstream out(f.dir.Sub("out/rows.txt"), std::ios::app);
    out << "a stray line\n";
  }
  CHECK(f.Done(a, t[1]));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.state() == v1::FAILED);
  CHECK_THAT(st.reason(), Catch::Contains("something other than this job wrote to it"));
}

TEST_CASE("a job's end is published once every agent that served it shipped its last logs") {
  Fixture f;
  f.Open();
  v1::RegisterAgentRequest r;
  r.set_node_id("n1");
  r.set_ships_logs(true);
  const std::string a = f.manager->RegisterAgent(r)->agent_id();
  const std::string job_id = f.SubmitListed(MakeRequest(f.dir, 2, 2));
  for (const auto& t : f.Pull(a, 2)) CHECK(f.Done(a, t));
  f.manager->Tick();
  CHECK(f.manager->GetJob(job_id)->state() == v1::RUNNING);  // ended, logs not complete
  f.manager->LogsComplete(a, job_id);
  CHECK(f.manager->GetJob(job_id)->state() == v1::SUCCEEDED);
  // An agent that never says so holds the end back for the grace, not longer.
  const std::string job2 = f.SubmitListed(MakeRequest(f.dir, 2, 2));
  for (const auto& t : f.Pull(a, 2)) CHECK(f.Done(a, t));
  f.manager->Tick();
  CHECK(f.manager->GetJob(job2)->state() == v1::RUNNING);
  f.clock.Advance(absl::Seconds(31));
  CHECK(f.manager->GetJob(job2)->state() == v1::SUCCEEDED);
}

TEST_CASE("allow_reuse runs the job again when a side input changed or the output was rewritten") {
  Fixture f;
  f.Open();
  const std::string a = f.Agent("n1");
  f.dir.Write("model/weights.bin", "v1");
  auto req = MakeRequest(f.dir, 3, 3);
  req.mutable_spec()->set_allow_reuse(true);
  auto* side = req.mutable_spec()->add_side_inputs();
  side->set_name("model");
  side->set_path(f.dir.Sub("model"));
  const std::string first = f.SubmitListed(req);
  RunToSuccess(f, first, a);
  CHECK(f.manager->GetJob(f.SubmitListed(req))->state() == v1::SUCCEEDED);  // reused

  f.dir.Write("model/weights.bin", "v2 is longer");
  const std::string changed = f.SubmitListed(req);
  CHECK(f.manager->GetJob(changed)->state() == v1::QUEUED);
  RunToSuccess(f, changed, a);

  // Its output rewritten outside prs: no reuse.
  f.dir.Write("out/rows.txt", "edited by hand\n");
  CHECK(f.manager->GetJob(f.SubmitListed(req))->state() == v1::QUEUED);
}

TEST_CASE("a master restart is no hang: the progress watchdog starts over") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 4, 1);
  req.mutable_spec()->set_progress_update_timeout(60);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  CHECK(f.Done(a, f.Pull(a, 1)[0]));
  f.clock.Advance(absl::Seconds(50));
  f.Open();  // the master restarts 50 s after the last progress
  const std::string b = f.Agent("n2");
  auto t = f.Pull(b, 1);
  REQUIRE(t.size() == 1);
  f.clock.Advance(absl::Seconds(30));
  v1::HeartbeatRequest hb;
  hb.set_agent_id(b);
  hb.add_held_lease_ids(t[0].lease_id());
  REQUIRE(f.manager->Heartbeat(hb).ok());
  f.manager->Tick();
  CHECK(f.manager->GetJob(job_id)->state() == v1::RUNNING);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

// Reports `task` as run() raising in worker `process`, with its traceback.
bool RaiseWithTraceback(Fixture& f, const std::string& agent, const v1::Task& task,
                        const std::string& process) {
  v1::ReportResultsRequest report;
  report.set_agent_id(agent);
  auto* r = report.add_results();
  r->set_job_id(task.job_id());
  r->set_task_id(task.task_id());
  r->set_lease_id(task.lease_id());
  r->set_status(v1::RUN_EXCEPTION);
  r->set_error("KeyError: 'x'");
  r->set_error_detail("Traceback ...");
  r->set_process_name(process);
  auto resp = f.manager->Report(report);
  REQUIRE(resp.ok());
  return resp->accepted(0);
}

TEST_CASE("the first error's traceback file is in JobStatus, also after a restart") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 2, 1);
  req.mutable_spec()->set_run_max_try(1);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 2);
  REQUIRE(t.size() == 2);
  // An error without a traceback names no file.
  CHECK(f.Fail(a, t[0], v1::RUN_TIMEOUT));
  CHECK(f.manager->GetJob(job_id)->first_error_log().empty());
  CHECK(f.manager->GetJob(job_id)->first_error().empty() == false);
  const std::string first = f.manager->GetJob(job_id)->first_error();
  f.Open();  // the first error is kept; the next one does not replace it
  CHECK(f.manager->GetJob(job_id)->first_error() == first);
  const std::string b = f.Agent("n1");
  auto rest = f.Pull(b, 1);
  REQUIRE(rest.size() == 1);
  CHECK(RaiseWithTraceback(f, b, rest[0], "process002"));
  CHECK(f.manager->GetJob(job_id)->first_error() == first);
  CHECK(f.manager->GetJob(job_id)->first_error_log().empty());
}

TEST_CASE("a failed attempt with a traceback names its file in the log tree") {
  Fixture f;
  f.Open();
  auto req = MakeRequest(f.dir, 1, 1);
  req.mutable_spec()->set_run_max_try(1);
  const std::string job_id = f.SubmitListed(req);
  const std::string a = f.Agent("n1");
  auto t = f.Pull(a, 1);
  REQUIRE(t.size() == 1);
  CHECK(RaiseWithTraceback(f, a, t[0], "process002"));
  auto st = *f.manager->GetJob(job_id);
  CHECK(st.first_error_log() == "user/error/n1/process002.txt");
  CHECK_THAT(st.first_error(), Catch::Contains("traceback in logs/user/error/n1/process002.txt"));
  f.Open();
  CHECK(f.manager->GetJob(job_id)->first_error_log() == "user/error/n1/process002.txt");
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("an output inside the master's state folder is refused, however it is spelled") {
  Fixture f;
  f.Open();
  for (const std::string& output :
       {f.dir.Sub("state"), f.dir.Sub("state/jobs/x/logs"), f.dir.Sub("out/../state/.")}) {
    auto req = MakeRequest(f.dir, 1, 1);
    req.mutable_spec()->set_output(output);
    req.mutable_spec()->set_append_row_file_name("state.db");
    auto sub = f.manager->Submit(req);
    REQUIRE_FALSE(sub.ok());
    CHECK(sub.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(sub.status().message()), Catch::Contains("inside the master's state"));
  }
  CHECK(f.manager->ListJobs(10).empty());
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("a job keeps at most 1000 distinct errors; the rest are counted together") {
  Job job;
  job.job_id = "j";
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (int i = 0; i < 1500; ++i) {
    AttemptRecord a;
    a.task_id = i;
    a.attempt = 1;
    a.node_id = "n1";
    a.result.set_status(v1::RUN_EXCEPTION);
    a.result.set_error("ValueError: input " + std::to_string(i));
    NoteError(job, a, now);
  }
  CHECK(job.errors.size() == kMaxDistinctErrors + 1);
  CHECK(job.errors.at(kOtherErrors).count == 500);
  CHECK(job.errors.at("ValueError: input 7").count == 1);
}

}  // namespace
}  // namespace prs::master

namespace prs::master {
namespace {

TEST_CASE("a bad snapshot or an oversized spec is refused at submit, nothing queued") {
  Fixture f;
  f.Open();
  const auto refused = [&](const v1::SubmitJobRequest& req, const std::string& why) {
    auto sub = f.manager->Submit(req);
    REQUIRE_FALSE(sub.ok());
    CHECK(sub.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(sub.status().message()), Catch::Contains(why));
  };
  auto req = MakeRequest(f.dir, 1, 1);
  req.mutable_snapshot()->add_files()->set_path("../outside.py");
  refused(req, "has a '..' component");
  req = MakeRequest(f.dir, 1, 1);
  req.mutable_snapshot()->add_files()->set_path("/etc/cron.d/x");
  refused(req, "is absolute");
  req = MakeRequest(f.dir, 1, 1);
  for (int i = 0; i < kMaxSnapshotFiles; ++i) {
    req.mutable_snapshot()->add_files()->set_path("empty/" + std::to_string(i));
  }
  refused(req, "over the limit of 10000");
  req = MakeRequest(f.dir, 1, 1);
  for (int i = 0; i < 300; ++i) {  // each text within its own bounds, the whole over 1 MiB
    auto* in = req.mutable_spec()->add_inputs();
    in->set_name("in" + std::to_string(i));
    in->set_type("file");
    in->set_path("/data/" + std::string(4000, 'p'));
  }
  refused(req, "over the limit of 1 MiB");
  CHECK(f.manager->ListJobs(10).empty());
}

}  // namespace
}  // namespace prs::master

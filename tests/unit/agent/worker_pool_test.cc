#include "agent/worker_pool.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/paths.h"
#include "tests/unit/test_util.h"

namespace prs::agent {
namespace {

namespace fs = std::filesystem;
using prs::testing::TempDir;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::Task MakeTask(const std::string& job_id, int64_t task_id, std::vector<std::string> items) {
  v1::Task t;
  t.set_job_id(job_id);
  t.set_task_id(task_id);
  t.set_lease_id(absl::StrCat(100 + task_id));
  t.set_attempt(1);
  for (auto& item : items) t.add_items(item);
  return t;
}

// A pool whose results are collected, on a clock the test chooses.
class PoolFixture {
 public:
  explicit PoolFixture(Clock* clock, std::vector<std::string> gpus = {}) {
    WorkerPoolOptions o;
    o.node_id = "node-a";
    o.ip = "10.0.0.1";
    o.gpus = std::move(gpus);
    o.set_visible_devices = !o.gpus.empty();
    o.clock = clock;
    o.log_appender = &appender_;
    o.on_results = [this](std::vector<v1::TaskResult> results) {
      absl::MutexLock lock(&mu_);
      for (auto& r : results) results_.push_back(std::move(r));
    };
    pool = std::make_unique<WorkerPool>(std::move(o));
  }
  ~PoolFixture() { pool.reset(); }  // joins the slots before the results go

  JobWorkspace Workspace(const std::string& job_id, const std::string& python, int processes,
                         const std::string& script = "def run(mini_batch):\n    return []\n") {
    v1::GetJobBundleResponse bundle;
    bundle.mutable_spec()->set_entry_script("score.py");
    bundle.mutable_spec()->set_process_count_per_node(processes);
    bundle.mutable_spec()->set_run_invocation_timeout(60);
    bundle.mutable_spec()->set_output(dir.Sub("out"));
    bundle.mutable_spec()->mutable_environment()->set_python(python);
    v1::SnapshotFile* file = bundle.mutable_snapshot()->add_files();
    file->set_path("score.py");
    file->set_content(script);
    WorkspaceOptions o;
    o.work_dir = dir.Sub("agent");
    o.node_id = "node-a";
    auto runtime = FindPythonRuntimeDir();
    o.python_dir = runtime.ok() ? *runtime : "";
    auto ws = JobWorkspace::Create(o, job_id, bundle);
    REQUIRE(ws.ok());
    return *std::move(ws);
  }

  // Waits (up to a minute) for `n` results.
  std::vector<v1::TaskResult> WaitForResults(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return results_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return results_;
  }

  // Waits (up to a minute) until no worker is busy.
  void WaitIdle() {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (pool->held().busy_workers > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  TempDir dir;
  std::unique_ptr<WorkerPool> pool;

 private:
  LogAppender appender_;
  absl::Mutex mu_;
  std::vector<v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
};

using Gpus = std::vector<std::string>;

TEST_CASE("WorkerIdentities: distinct GPUs while there are enough, then shared round-robin",
          "[worker_pool]") {
  WorkerIdentities ids(Gpus{"0", "1"});
  const auto p0 = ids.Take(1);
  const auto p1 = ids.Take(1);
  const auto p2 = ids.Take(1);
  const auto p3 = ids.Take(1);
  CHECK(p0.name == "process000");
  CHECK(p0.gpus == Gpus{"0"});
  CHECK(p1.name == "process001");
  CHECK(p1.gpus == Gpus{"1"});
  CHECK(p2.gpus == Gpus{"0"});  // more workers than GPUs: shared, none left out
  CHECK(p3.gpus == Gpus{"1"});

  // A replacement takes what its predecessor gave back.
  ids.GiveBack(p1.gpus);
  const auto replacement = ids.Take(1);
  CHECK(replacement.name == "process004");
  CHECK(replacement.gpus == Gpus{"1"});

  ids.NewJob();
  CHECK(ids.Take(1).name == "process000");
}

TEST_CASE("WorkerIdentities: several GPUs per process, a subset, none", "[worker_pool]") {
  WorkerIdentities four(Gpus{"0", "1", "2", "3"});
  CHECK(four.Take(2).gpus == Gpus{"0", "1"});
  CHECK(four.Take(2).gpus == Gpus{"2", "3"});
  CHECK(four.Take(2).gpus == Gpus{"0", "1"});            // 3 x 2 > 4: round-robin
  CHECK(four.Take(8).gpus == Gpus{"0", "1", "2", "3"});  // more than the node has: all
  CHECK(four.Take(0).gpus.empty());                      // gpus_per_process: 0 hides them

  WorkerIdentities some(Gpus{"0", "2"});  // prs-agent --gpus 0,2
  CHECK(some.Take(1).gpus == Gpus{"0"});
  CHECK(some.Take(1).gpus == Gpus{"2"});

  WorkerIdentities none(Gpus{});
  CHECK(none.gpus().empty());
  CHECK(none.Take(1).gpus.empty());
}

TEST_CASE("ReadStderrTail keeps the last 20 lines and the last line that says something",
          "[worker_pool]") {
  TempDir dir;
  std::string text;
  for (int i = 1; i <= 30; ++i) absl::StrAppend(&text, "line ", i, "\n");
  text += "ImportError: no module \x1b[31mfoo\n\n   \n";
  const auto tail = ReadStderrTail(dir.Write("stderr.txt", text).string());
  CHECK(tail.last_line.find("ImportError: no module") == 0);
  CHECK(tail.last_line.find('\x1b') == std::string::npos);  // printable
  CHECK(tail.lines.find("line 12\n") == 0);                 // 19 lines and the error
  CHECK(tail.lines.find("line 11\n") == std::string::npos);

  CHECK(ReadStderrTail(dir.Sub("missing.txt")).lines.empty());
  // A long file: only its end is read, and the cut first line is left out.
  const auto long_tail =
      ReadStderrTail(dir.Write("long.txt", std::string(20000, 'x') + "\nend\n").string());
  CHECK(long_tail.last_line == "end");
  CHECK(long_tail.lines == "end\n");
}

TEST_CASE("A worker that cannot start fails its mini-batches with the reason", "[worker_pool]") {
  FakeClock clock;
  PoolFixture f(&clock, /*gpus=*/{"0"});
  REQUIRE(f.pool->StartJob(f.Workspace("j1", "/nonexistent/bin/python3", 1)).ok());
  CHECK(f.pool->IsRunning("j1"));
  CHECK(f.pool->CurrentJob() == "j1");

  std::vector<v1::Task> tasks = {MakeTask("j1", 1, {"a.txt"}), MakeTask("j1", 2, {"b.txt"})};
  CHECK(f.pool->Enqueue("j1", std::move(tasks)).empty());
  const auto results = f.WaitForResults(2);
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.status() == v1::LOAD_FAILED);
    CHECK(r.error().find("the worker interpreter /nonexistent/bin/python3 cannot be executed "
                         "on node node-a") == 0);
    // The attempt's times are the pool's clock's.
    CHECK(r.start_time_ms() == absl::ToUnixMillis(clock.Now()));
    CHECK(r.elapsed_seconds() == 0);
  }
  // Each attempt starts a new worker: process000, then process001.
  CHECK(results[0].process_name() == "process000");
  CHECK(results[1].process_name() == "process001");
  f.WaitIdle();
  CHECK(f.pool->held().lease_ids.empty());

  const fs::path logs = f.dir.path() / "agent/jobs/j1/logs";
  const std::string process_log = ReadAll(logs / "sys/node/node-a/process000.txt");
  CHECK(process_log.find("2023-11-14 22:13:20.000|INFO|") == 0);
  CHECK(process_log.find("mini-batch 1 completed: status=LOAD_FAILED ip=10.0.0.1") !=
        std::string::npos);
  const std::string error_log = ReadAll(logs / "user/error/node-a/process000.txt");
  CHECK(error_log.find("2023-11-14 22:13:20 UTC mini-batch 1 LOAD_FAILED: the worker "
                       "interpreter") == 0);
  CHECK(error_log.find("inputs:\n  a.txt\n") != std::string::npos);
  CHECK(ReadAll(logs / "sys/node/node-a/agent.txt")
            .find("1 workers, python=/nonexistent/bin/"
                  "python3, GPUs 0, 1 per process") != std::string::npos);

  CHECK(f.pool->StopJob(/*kill_running=*/false));
  CHECK_FALSE(f.pool->IsRunning("j1"));
  CHECK(ReadAll(logs / "sys/node/node-a/agent.txt").find("job j1 stopped on this node") !=
        std::string::npos);
}

TEST_CASE("The queue takes only the running job's mini-batches", "[worker_pool]") {
  FakeClock clock;
  PoolFixture f(&clock);
  // No job: room for one worker's batch and its prefetch.
  CHECK(f.pool->WaitForRoom(/*prefetch_per_worker=*/2) == 3);
  std::vector<v1::Task> tasks = {MakeTask("j9", 1, {"a"})};
  CHECK(f.pool->Enqueue("j9", std::move(tasks)).size() == 1);  // not running: given back

  REQUIRE(f.pool->StartJob(f.Workspace("j1", "/nonexistent/bin/python3", 2)).ok());
  std::vector<v1::Task> mixed = {MakeTask("j1", 1, {"a"}), MakeTask("j2", 2, {"b"})};
  const auto back = f.pool->Enqueue("j1", std::move(mixed));
  REQUIRE(back.size() == 1);
  CHECK(back[0].job_id() == "j2");
  f.WaitForResults(1);

  // Another job's stop leaves this one running.
  CHECK_FALSE(f.pool->StopJob(/*kill_running=*/true, "j2"));
  CHECK(f.pool->IsRunning("j1"));
  CHECK(f.pool->StopJob(/*kill_running=*/true, "j1"));
  CHECK(f.pool->CurrentJob().empty());

  f.pool->Stop();
  CHECK(f.pool->WaitForRoom(2) == 0);
}

TEST_CASE("ReleasedResult gives a mini-batch back unrun", "[worker_pool]") {
  const v1::TaskResult r = ReleasedResult(MakeTask("j1", 7, {"a"}));
  CHECK(r.job_id() == "j1");
  CHECK(r.task_id() == 7);
  CHECK(r.lease_id() == "107");
  CHECK(r.status() == v1::RELEASED);
}

TEST_CASE("A real worker runs a mini-batch", "[worker_pool][python]") {
  PoolFixture f(RealClock::Get());
  const std::string script =
      "import os\n"
      "def run(mini_batch):\n"
      "    return [os.path.basename(p) for p in mini_batch]\n";
  REQUIRE(f.pool->StartJob(f.Workspace("j1", "/usr/bin/python3", 1, script)).ok());
  std::vector<v1::Task> tasks = {MakeTask("j1", 1, {"/data/a.txt", "/data/b.txt"})};
  f.pool->Enqueue("j1", std::move(tasks));
  const auto results = f.WaitForResults(1);
  REQUIRE(results.size() == 1);
  INFO(results[0].error() << "\n" << results[0].error_detail());
  CHECK(results[0].status() == v1::RUN_DONE);
  CHECK(results[0].items_total() == 2);
  CHECK(results[0].items_succeeded() == 2);
  CHECK(results[0].process_name() == "process000");
  CHECK(results[0].pid() > 0);
  CHECK(f.pool->StopJob(/*kill_running=*/false));
}

TEST_CASE("Short mini-batches deepen the prefetch; each job starts shallow",
          "[worker_pool][python]") {
  FakeClock clock;  // stands still: every mini-batch takes no time at all
  PoolFixture f(&clock);
  REQUIRE(f.pool->StartJob(f.Workspace("j1", "/usr/bin/python3", 2)).ok());
  // Nothing timed yet: one queued per worker beyond the one it runs.
  CHECK(f.pool->PrefetchPerWorker(1) == 1);
  CHECK(f.pool->WaitForRoom(1) == 4);
  std::vector<v1::Task> tasks;
  for (int i = 1; i <= 6; ++i) tasks.push_back(MakeTask("j1", i, {"/data/a.txt"}));
  CHECK(f.pool->Enqueue("j1", std::move(tasks)).empty());
  const auto results = f.WaitForResults(6);
  REQUIRE(results.size() == 6);
  for (const auto& r : results) CHECK(r.status() == v1::RUN_DONE);
  f.WaitIdle();
  // Timed on started workers only (the first of each slot waited for init()).
  CHECK(f.pool->PrefetchPerWorker(1) == 32);
  // Room for 2 x (1 + 32), asked for at once.
  CHECK(f.pool->WaitForRoom(1) == 66);
  CHECK(f.pool->RoomNow(1) == 66);
  CHECK(f.pool->StopJob(/*kill_running=*/false));
  // A pull between jobs is for the next one, whose mini-batches may be long.
  CHECK(f.pool->PrefetchPerWorker(1) == 1);
  CHECK(f.pool->WaitForRoom(1) == 2);
  REQUIRE(f.pool->StartJob(f.Workspace("j2", "/usr/bin/python3", 2)).ok());
  CHECK(f.pool->PrefetchPerWorker(1) == 1);
  CHECK(f.pool->RoomNow(1) == 4);
  CHECK(f.pool->StopJob(/*kill_running=*/false));
}

}  // namespace
}  // namespace prs::agent

#include "master/attempt_outcome.h"

#include <catch2/catch.hpp>

namespace prs::master {
namespace {

struct Context {
  v1::JobSpec spec;
  int64_t next_task_id = 100;
  OutcomeContext Get(bool groups_done = false) {
    OutcomeContext c;
    c.spec = &spec;
    c.groups_done = groups_done;
    c.next_task_id = &next_task_id;
    return c;
  }
};

Lease MakeLease(int32_t attempt, int64_t items, TaskKind kind = TaskKind::kRun) {
  Lease l;
  l.lease_id = "9";
  l.agent_id = "a#1";
  l.attempt = attempt;
  l.item_count = items;
  l.run = 2;
  l.kind = kind;
  return l;
}

v1::TaskResult Result(v1::AttemptStatus status, int64_t ok = 0, std::string rows = "") {
  v1::TaskResult r;
  r.set_status(status);
  r.set_items_succeeded(ok);
  r.set_rows(std::move(rows));
  r.set_row_count(ok);
  if (status != v1::RUN_DONE) r.set_error("ValueError: bad\x1b[31m input");
  return r;
}

TEST_CASE("a done mini-batch succeeds with its rows; a failed try is retried until run_max_try") {
  Context c;
  c.spec.set_run_max_try(3);
  c.spec.set_output_action("append_row");
  Outcome o = DecideOutcome(c.Get(), 5, MakeLease(1, 4), "a#1", "n1",
                            Result(v1::RUN_DONE, 4, "a\nb\nc\nd\n"));
  CHECK(o.commit.new_state == TaskState::kSucceeded);
  CHECK(o.rows == "a\nb\nc\nd\n");
  CHECK(o.row_count == 4);
  CHECK(o.run == 2);
  CHECK(o.commit.attempt.node_id == "n1");
  CHECK(o.commit.attempt.result.rows().empty());  // rows are not stored with the attempt

  o = DecideOutcome(c.Get(), 5, MakeLease(2, 4), "a#1", "n1", Result(v1::RUN_EXCEPTION));
  CHECK(o.commit.new_state == TaskState::kPending);
  CHECK(o.commit.tries == 2);
  CHECK(o.counts_try);
  // Control bytes never reach the summaries.
  CHECK(o.commit.attempt.result.error().find('\x1b') == std::string::npos);

  o = DecideOutcome(c.Get(), 5, MakeLease(3, 4), "a#1", "n1", Result(v1::RUN_TIMEOUT));
  CHECK(o.commit.new_state == TaskState::kFailed);
  CHECK(o.item_count == 4);

  // Retrying cannot help: the first try is the last.
  o = DecideOutcome(c.Get(), 5, MakeLease(1, 4), "a#1", "n1", Result(v1::NOT_DELIVERED),
                    /*last_try=*/true);
  CHECK(o.commit.new_state == TaskState::kFailed);
}

TEST_CASE("an attempt that never ran does not count a try") {
  Context c;
  c.spec.set_run_max_try(1);
  for (auto status : {v1::INIT_FAILED, v1::LOAD_FAILED, v1::RELEASED}) {
    Outcome o = DecideOutcome(c.Get(), 5, MakeLease(1, 4), "a#1", "n1", Result(status));
    CHECK(o.commit.new_state == TaskState::kPending);
    CHECK(o.commit.tries == 0);
    CHECK_FALSE(o.counts_try);
    CHECK(o.load_failed == (status == v1::LOAD_FAILED));
    CHECK(o.init_failed == (status == v1::INIT_FAILED));
  }
}

TEST_CASE("a plan's answer becomes mini-batches; a malformed one fails the plan as one item") {
  Context c;
  c.spec.set_run_max_try(1);
  c.spec.add_inputs()->set_type("tabular");
  Lease plan = MakeLease(1, 0, TaskKind::kPlan);
  plan.plan_descriptor = "plan\tbytes\tcsv:300:5\t100\t/d/a.csv";
  Outcome o = DecideOutcome(c.Get(), 0, plan, "a#1", "n1",
                            Result(v1::RUN_DONE, 0, "10\t120\t3\n120\t300\t4\n"));
  CHECK(o.commit.new_state == TaskState::kSucceeded);
  REQUIRE(o.new_tasks.size() == 2);
  CHECK(o.new_tasks[0].task_id == 100);
  CHECK(o.new_tasks[0].items[0] == "range\tcsv:300:5\t10@0\t120@3\t/d/a.csv");
  CHECK(o.new_tasks[1].items[0] == "range\tcsv:300:5\t120@3\t300@7\t/d/a.csv");
  CHECK(o.items_total_delta == 7);
  CHECK(o.rows.empty());  // a plan is never output
  CHECK(o.plan_ended);
  CHECK(c.next_task_id == 102);

  o = DecideOutcome(c.Get(), 0, plan, "a#1", "n1", Result(v1::RUN_DONE, 0, "nonsense\n"));
  CHECK(o.commit.new_state == TaskState::kFailed);
  CHECK(o.commit.attempt.result.status() == v1::RUN_EXCEPTION);
  CHECK(o.commit.attempt.result.error().find("malformed line 'nonsense'") != std::string::npos);
  CHECK(o.commit.item_count == -1);  // unknown records: one failed item
  CHECK(o.item_count == 1);
  CHECK(o.new_tasks.empty());
}

TEST_CASE("a result whose rows cannot be written as they are is a failed try, naming why") {
  Context c;
  c.spec.set_run_max_try(3);
  c.spec.set_output_action("append_row");
  const auto decide = [&](v1::TaskResult r, int64_t items = 2) {
    return DecideOutcome(c.Get(), 5, MakeLease(1, items), "a#1", "n1", std::move(r));
  };
  struct Case {
    v1::TaskResult result;
    const char* why;
  };
  v1::TaskResult more = Result(v1::RUN_DONE, 2, "a\nb\nc\n");
  more.set_row_count(3);
  v1::TaskResult glued = Result(v1::RUN_DONE, 2, "a\nb");
  v1::TaskResult lying = Result(v1::RUN_DONE, 2, "");
  v1::TaskResult huge = Result(v1::RUN_DONE, 2, std::string(kMaxResultRowsBytes, 'x') + "\n");
  huge.set_row_count(1);
  v1::TaskResult header = Result(v1::RUN_DONE, 2, "a\nb\n");
  header.set_header("no line break");
  for (const Case& k : {Case{more, "3 rows for 2 items"}, Case{glued, "do not end with a line"},
                        Case{lying, "says 2 rows but carries 0 bytes"},
                        Case{huge, "over the limit of 64 MiB"}, Case{header, "header"}}) {
    INFO(k.why);
    const Outcome o = decide(k.result);
    CHECK(o.commit.new_state == TaskState::kPending);  // tried again (run_max_try 3)
    CHECK(o.counts_try);
    CHECK(o.rows.empty());
    CHECK(o.commit.attempt.result.status() == v1::RUN_EXCEPTION);
    CHECK_THAT(o.commit.attempt.result.error(), Catch::Contains(k.why));
  }
  // Whole lines, one per item at most: written.
  const Outcome ok = decide(Result(v1::RUN_DONE, 2, "a\nb\n"));
  CHECK(ok.commit.new_state == TaskState::kSucceeded);
  CHECK(ok.rows == "a\nb\n");
  // A traceback is kept up to 64 KiB with the attempt.
  v1::TaskResult traced = Result(v1::RUN_EXCEPTION);
  traced.set_error_detail(std::string(1 << 20, 't'));
  CHECK(decide(traced).commit.attempt.result.error_detail().size() == kMaxErrorDetailBytes);
}

TEST_CASE("outcomes sum to the counters, rows and header a commit writes") {
  Context c;
  c.spec.set_run_max_try(1);
  c.spec.set_output_action("append_row");
  v1::TaskResult done = Result(v1::RUN_DONE, 2, "x\ny\n");
  done.set_header("col\n");
  const Outcome ok = DecideOutcome(c.Get(), 1, MakeLease(1, 3), "a#1", "n1", done);
  const Outcome failed =
      DecideOutcome(c.Get(), 2, MakeLease(1, 5), "a#1", "n1", Result(v1::RUN_EXCEPTION));
  CommitBatch b = SumOutcomes({&ok, &failed}, /*header_first=*/true);
  CHECK(b.deltas.processed == 2);
  CHECK(b.deltas.failed == 1);
  CHECK(b.deltas.items_succeeded == 2);
  CHECK(b.deltas.items_failed == 1 + 5);
  CHECK(b.deltas.rows_written == 2);
  CHECK(b.rows == "col\nx\ny\n");
  CHECK(b.deltas.output_bytes == static_cast<int64_t>(b.rows.size()));
  CHECK(b.commits.size() == 2);
  CHECK(SumOutcomes({&ok}, /*header_first=*/false).rows == "x\ny\n");
}

}  // namespace
}  // namespace prs::master

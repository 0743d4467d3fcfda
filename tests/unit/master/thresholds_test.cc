#include "master/thresholds.h"

#include <catch2/catch.hpp>

namespace prs::master {
namespace {

v1::JobSpec Spec(int64_t error_threshold, int64_t allowed_count, int64_t allowed_percent) {
  v1::JobSpec spec;
  spec.set_error_threshold(error_threshold);
  spec.set_allowed_failed_count(allowed_count);
  spec.set_allowed_failed_percent(allowed_percent);
  return spec;
}

v1::JobCounts Counts(int64_t created, int64_t processed, int64_t failed_batches, int64_t items_ok,
                     int64_t items_failed) {
  v1::JobCounts c;
  c.set_listing_done(true);
  c.set_mini_batches_created(created);
  c.set_mini_batches_processed(processed);
  c.set_mini_batches_failed(failed_batches);
  c.set_items_succeeded(items_ok);
  c.set_items_failed(items_failed);
  return c;
}

WorkState Done(std::string first_error = "") { return WorkState{true, true, first_error}; }

TEST_CASE("a job goes on until every mini-batch exists and was processed") {
  const auto spec = Spec(-1, -1, 100);
  CHECK_FALSE(JudgeCounts(spec, Counts(4, 3, 0, 3, 0), Done()).has_value());
  CHECK_FALSE(JudgeCounts(spec, Counts(4, 4, 0, 4, 0), WorkState{false, true, ""}).has_value());
  CHECK_FALSE(JudgeCounts(spec, Counts(4, 4, 0, 4, 0), WorkState{true, false, ""}).has_value());
  auto v = JudgeCounts(spec, Counts(4, 4, 0, 4, 0), Done());
  REQUIRE(v.has_value());
  CHECK(v->state == v1::SUCCEEDED);
  CHECK(v->reason.empty());
}

TEST_CASE("each threshold fails the job with its reason and the first error") {
  auto v = JudgeCounts(Spec(2, -1, 100), Counts(10, 1, 0, 0, 3), WorkState{false, false, "E"});
  REQUIRE(v.has_value());
  CHECK(v->state == v1::FAILED);
  CHECK(v->reason ==
        "error_threshold exceeded: 3 failed items > error_threshold 2; first error: E");
  v = JudgeCounts(Spec(-1, 1, 100), Counts(10, 2, 2, 0, 2), WorkState{false, false, ""});
  REQUIRE(v.has_value());
  CHECK(v->reason ==
        "allowed_failed_count exceeded: 2 failed mini-batches > allowed_failed_count 1");
  // The percentage waits for every mini-batch to exist (tabular plans).
  CHECK_FALSE(JudgeCounts(Spec(-1, -1, 10), Counts(4, 2, 2, 0, 2), WorkState{false, false, ""})
                  .has_value());
  v = JudgeCounts(Spec(-1, -1, 10), Counts(4, 2, 2, 0, 2), WorkState{true, false, ""});
  REQUIRE(v.has_value());
  CHECK(v->reason == "allowed_failed_percent exceeded: 2 of 4 mini-batches failed > 10%");
}

TEST_CASE("a job in which no input succeeded fails whatever the thresholds tolerate") {
  auto v = JudgeCounts(Spec(-1, -1, 100), Counts(3, 3, 3, 0, 7), Done("boom"));
  REQUIRE(v.has_value());
  CHECK(v->state == v1::FAILED);
  CHECK(v->reason ==
        "no input succeeded: all 7 items failed, in 3 mini-batches; first error: boom");
  // An empty job (nothing failed, nothing succeeded) succeeds.
  v = JudgeCounts(Spec(-1, -1, 100), Counts(0, 0, 0, 0, 0), Done());
  REQUIRE(v.has_value());
  CHECK(v->state == v1::SUCCEEDED);
}

TEST_CASE("the watchdogs fail a job that makes no mini-batch or no progress in time") {
  v1::JobSpec spec;
  spec.set_first_task_creation_timeout(30);
  spec.set_progress_update_timeout(60);
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  v1::JobCounts listing;  // nothing made, listing not done
  WatchState w;
  w.now = t0 + absl::Seconds(30);
  w.listing_started = t0;
  w.last_progress = t0;
  CHECK_FALSE(JudgeWatchdogs(spec, listing, w).has_value());
  w.now = t0 + absl::Seconds(31);
  auto why = JudgeWatchdogs(spec, listing, w);
  REQUIRE(why.has_value());
  CHECK(why->find("no mini-batch was made within 30 s (first_task_creation_timeout)") == 0);

  v1::JobCounts made;
  made.set_mini_batches_created(5);
  w.now = t0 + absl::Seconds(61);
  CHECK_FALSE(JudgeWatchdogs(spec, made, w).has_value());  // QUEUED: no agent yet
  w.running = true;
  w.leased = 2;
  w.lease_nodes = {"n1", "n2"};
  why = JudgeWatchdogs(spec, made, w);
  REQUIRE(why.has_value());
  CHECK(why->find("no progress for 60 s (progress_update_timeout)") == 0);
  CHECK(why->find("while 2 were leased to n1, n2") != std::string::npos);
  w.last_progress = t0 + absl::Seconds(2);
  CHECK_FALSE(JudgeWatchdogs(spec, made, w).has_value());
}

}  // namespace
}  // namespace prs::master

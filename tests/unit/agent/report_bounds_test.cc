#include "agent/report_bounds.h"

#include <catch2/catch.hpp>

#include <deque>
#include <string>

#include "common/message_limits.h"
#include "common/text.h"

namespace prs {
namespace {

v1::TaskResult Done(int64_t task_id, std::string rows, int64_t row_count) {
  v1::TaskResult r;
  r.set_job_id("job");
  r.set_task_id(task_id);
  r.set_lease_id("lease-" + std::to_string(task_id));
  r.set_status(v1::RUN_DONE);
  r.set_items_total(row_count);
  r.set_items_succeeded(row_count);
  r.set_rows(std::move(rows));
  r.set_row_count(row_count);
  return r;
}

TEST_CASE("BoundResult leaves a result within the bounds as it is", "[report_bounds]") {
  v1::TaskResult r = Done(1, "a\nb\n", 2);
  const std::string before = r.SerializeAsString();
  BoundResult(r);
  CHECK(r.SerializeAsString() == before);
}

TEST_CASE("BoundResult makes rows over the bound a failed try naming it", "[report_bounds]") {
  v1::TaskResult r = Done(1, std::string(kMaxResultRowsBytes, 'x') + "\n", 1);
  BoundResult(r);
  CHECK(r.status() == v1::RUN_EXCEPTION);
  CHECK(r.rows().empty());
  CHECK(r.row_count() == 0);
  CHECK(r.items_succeeded() == 0);
  CHECK(r.error() ==
        "the result's rows are 67108865 bytes, over the limit of 67108864 bytes per mini-batch "
        "(docs/limits.md); use a smaller mini_batch_size");
  CHECK(static_cast<int64_t>(r.ByteSizeLong()) < kMaxResultBytes);
}

TEST_CASE("BoundResult keeps another failure's status and error", "[report_bounds]") {
  v1::TaskResult r = Done(1, std::string(kMaxResultRowsBytes + 1, 'x'), 1);
  r.set_status(v1::LOAD_FAILED);
  r.set_error("no run() in score.py");
  BoundResult(r);
  CHECK(r.status() == v1::LOAD_FAILED);
  CHECK(r.error() == "no run() in score.py");
  CHECK(r.rows().empty());
}

TEST_CASE("BoundResult drops a header over the bound", "[report_bounds]") {
  v1::TaskResult r = Done(1, "a\n", 1);
  r.set_header(std::string(kMaxHeaderBytes + 1, 'h'));
  BoundResult(r);
  CHECK(r.status() == v1::RUN_EXCEPTION);
  CHECK(r.header().empty());
  CHECK(r.error().find("header") != std::string::npos);
}

TEST_CASE("BoundResult cuts texts on a character boundary and makes them UTF-8",
          "[report_bounds]") {
  v1::TaskResult r = Done(1, "", 0);
  r.set_status(v1::RUN_EXCEPTION);
  // Two-byte characters: a cut at an odd byte would split one.
  std::string detail;
  while (static_cast<int64_t>(detail.size()) <= kMaxErrorDetailBytes) detail += "\xC3\xA9";
  r.set_error_detail("x" + detail);
  r.set_error(std::string("bad \xFF byte"));
  BoundResult(r);
  CHECK(static_cast<int64_t>(r.error_detail().size()) <= kMaxErrorDetailBytes);
  CHECK(static_cast<int64_t>(r.error_detail().size()) >= kMaxErrorDetailBytes - 1);
  CHECK(IsValidUtf8(r.error_detail()));
  CHECK(IsValidUtf8(r.error()));
  CHECK(r.error() == "bad \\xff byte");
}

TEST_CASE("TakeReport packs results into requests within the bound", "[report_bounds]") {
  std::deque<v1::TaskResult> queue;
  // Three results of 30 MiB of rows each: two fit in one request, not three.
  for (int i = 0; i < 3; ++i) queue.push_back(Done(i, std::string((30 << 20) - 1, 'x') + "\n", 1));
  queue.push_back(Done(3, "small\n", 1));

  auto first = TakeReport(queue, 64);
  REQUIRE(first.size() == 2);
  CHECK(first[0].task_id() == 0);
  int64_t bytes = 0;
  for (const auto& r : first) bytes += static_cast<int64_t>(r.ByteSizeLong());
  CHECK(bytes < kMaxReportRequestBytes);

  auto second = TakeReport(queue, 64);
  REQUIRE(second.size() == 2);  // the third large one and the small one
  CHECK(second[0].task_id() == 2);
  CHECK(second[1].task_id() == 3);
  CHECK(queue.empty());
}

TEST_CASE("TakeReport takes at most max_results, and one result alone at its bound",
          "[report_bounds]") {
  std::deque<v1::TaskResult> queue;
  for (int i = 0; i < 5; ++i) queue.push_back(Done(i, "r\n", 1));
  CHECK(TakeReport(queue, 3).size() == 3);
  CHECK(TakeReport(queue, 3).size() == 2);
  CHECK(TakeReport(queue, 3).empty());

  // The largest result BoundResult lets through goes alone, and fits.
  v1::TaskResult big = Done(9, std::string(kMaxResultRowsBytes - 1, 'x') + "\n", 1);
  big.set_header(std::string(kMaxHeaderBytes - 1, 'h') + "\n");
  big.set_error_detail(std::string(kMaxErrorDetailBytes, 'd'));
  big.set_error(std::string(4 * kMaxErrorChars, 'e'));
  BoundResult(big);
  REQUIRE(big.status() == v1::RUN_DONE);
  CHECK(static_cast<int64_t>(big.ByteSizeLong()) <= kMaxResultBytes);
  queue.push_back(big);
  queue.push_back(big);
  auto alone = TakeReport(queue, 64);
  REQUIRE(alone.size() == 1);
  v1::ReportResultsRequest request;
  request.set_agent_id(std::string(200, 'a'));
  *request.add_results() = alone[0];
  CHECK(static_cast<int64_t>(request.ByteSizeLong()) <= kMaxReportRequestBytes);
  CHECK(TakeReport(queue, 64).size() == 1);
}

}  // namespace
}  // namespace prs

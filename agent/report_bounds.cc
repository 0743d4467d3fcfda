#include "agent/report_bounds.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/message_limits.h"
#include "common/sizes.h"
#include "common/text.h"

namespace prs {
namespace {

// Bytes a result adds to a ReportResultsRequest: the result and its tag and
// length prefix.
int64_t ReportBytes(const v1::TaskResult& result) {
  return static_cast<int64_t>(result.ByteSizeLong()) + 16;
}

}  // namespace

void BoundResult(v1::TaskResult& result) {
  // kMaxErrorChars is in characters; four bytes each at most.
  result.set_error(BoundedUtf8(result.error(), 4 * kMaxErrorChars));
  result.set_error_detail(BoundedUtf8(result.error_detail(), kMaxErrorDetailBytes));
  const int64_t rows = static_cast<int64_t>(result.rows().size());
  const int64_t header = static_cast<int64_t>(result.header().size());
  if (rows <= kMaxResultRowsBytes && header <= kMaxHeaderBytes) return;
  const bool done = result.status() == v1::RUN_DONE;
  result.clear_rows();
  result.set_row_count(0);
  result.clear_header();
  // Rows only count when run() returned; another failure keeps its status
  // and its own error.
  if (!done) return;
  const auto [size, limit] = rows > kMaxResultRowsBytes
                                 ? FormatSizeAndLimit(rows, kMaxResultRowsBytes)
                                 : FormatSizeAndLimit(header, kMaxHeaderBytes);
  result.set_status(v1::RUN_EXCEPTION);
  result.set_error(rows > kMaxResultRowsBytes
                       ? absl::StrCat("the result's rows are ", size, ", over the limit of ", limit,
                                      " per mini-batch (docs/limits.md); use a smaller "
                                      "mini_batch_size")
                       : absl::StrCat("the result's header is ", size, ", over the limit of ",
                                      limit, " (docs/limits.md)"));
  result.set_error_detail("");
  result.set_items_succeeded(0);
}

std::vector<v1::TaskResult> TakeReport(std::deque<v1::TaskResult>& queue, int max_results) {
  std::vector<v1::TaskResult> batch;
  // Room for the agent id and the request's own framing.
  int64_t bytes = 1024;
  while (!queue.empty() && static_cast<int>(batch.size()) < max_results) {
    const int64_t next = ReportBytes(queue.front());
    if (!batch.empty() && bytes + next > kMaxReportRequestBytes) break;
    bytes += next;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return batch;
}

}  // namespace prs

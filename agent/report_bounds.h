#ifndef PRS_AGENT_REPORT_BOUNDS_H_
#define PRS_AGENT_REPORT_BOUNDS_H_

// Keeps what the agent reports within what the master takes
// (common/message_limits.h), so that no report is refused whole and resent
// forever: a result too large to send becomes a failed try that names the
// bound, and results are packed into requests that fit.

#include <cstdint>
#include <deque>
#include <vector>

#include "prs/v1/agent_service.pb.h"

namespace prs {

// Makes `result` fit: its texts valid UTF-8 (a script's error may quote a
// path that is not; shown as \xNN), the one-line error and the traceback cut
// to their bounds on a character boundary, and rows or a header over their
// bound dropped, the attempt then a failed try (RUN_EXCEPTION) naming the
// bound; the master would refuse those rows anyway.
void BoundResult(v1::TaskResult& result);

// Takes from the front of `queue` the results of the next ReportResults: at
// least one, at most `max_results`, and no more than fit in
// kMaxReportRequestBytes together. Results must have been bounded.
std::vector<v1::TaskResult> TakeReport(std::deque<v1::TaskResult>& queue, int max_results);

}  // namespace prs

#endif  // PRS_AGENT_REPORT_BOUNDS_H_

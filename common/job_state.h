#ifndef PRS_COMMON_JOB_STATE_H_
#define PRS_COMMON_JOB_STATE_H_

#include <string>

#include "prs/v1/job.pb.h"

namespace prs {

// "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED" (the names users see).
std::string JobStateName(v1::JobState state);

// SUCCEEDED, FAILED or CANCELLED.
bool IsTerminal(v1::JobState state);

// A duration for people: "42s", "3m07s", "1h02m03s"; "unknown" when negative.
std::string FormatDuration(double seconds);

}  // namespace prs

#endif  // PRS_COMMON_JOB_STATE_H_

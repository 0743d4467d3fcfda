#ifndef PRS_CLI_FIRST_ERROR_LOG_H_
#define PRS_CLI_FIRST_ERROR_LOG_H_

// Which file of a job's log tree holds its first traceback, for
// `prs logs JOB --errors`. Header-only, so that the unit tests use it
// without linking the CLI.

#include <string>

#include "prs/v1/job.pb.h"

namespace prs::cli {

// The file, relative to the job's log_dir, with the first error's traceback:
// status.first_error_log; when that is empty, the path first_error's text
// names; else `listed` (the first user/error/ file of the tree, or empty).
inline std::string FirstErrorLog(const v1::JobStatus& status, const std::string& listed) {
  if (!status.first_error_log().empty()) return status.first_error_log();
  // Only for an older master, which does not fill first_error_log: its
  // first_error names the file as "... logs/user/error/<node>/<process>.txt ...".
  const std::string& text = status.first_error();
  const auto at = text.find("logs/user/error/");
  const auto end = text.find(".txt", at);
  if (at != std::string::npos && end != std::string::npos) {
    const auto from = at + 5;  // after "logs/"
    return text.substr(from, end + 4 - from);
  }
  return listed;
}

}  // namespace prs::cli

#endif  // PRS_CLI_FIRST_ERROR_LOG_H_

#ifndef PRS_CLI_CLIENT_H_
#define PRS_CLI_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/job_state.h"
#include "common/tls_files.h"
#include "prs/v1/job_service.pb.h"

namespace prs::cli {

// How a client reaches the master: TLS when `tls.ca` is set, and the
// bearer token sent with every call (docs/security.md).
struct Connection {
  TlsFiles tls;
  std::string token;
};

// A JobService client with deadlines on every call. Thread-compatible. A TLS
// file that cannot be read fails every call with the reason.
class JobClient {
 public:
  explicit JobClient(const std::string& address, const Connection& connection = {});
  ~JobClient();

  absl::StatusOr<v1::SubmitJobResponse> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::JobStatus> Get(const std::string& job_id);
  absl::StatusOr<std::vector<v1::JobStatus>> List(int limit);
  absl::StatusOr<v1::JobStatus> Cancel(const std::string& job_id);
  absl::StatusOr<v1::JobStatus> Resume(const std::string& job_id);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents();
  absl::StatusOr<v1::ListLogsResponse> ListLogs(const std::string& job_id);
  absl::StatusOr<v1::ReadLogResponse> ReadLog(const std::string& job_id, const std::string& path,
                                              int64_t offset, int64_t max_bytes);
  // Calls `on_status` for every status until the job ends; reconnects (with
  // backoff) when the stream breaks, e.g. across a master restart. Returns the
  // terminal status.
  absl::StatusOr<v1::JobStatus> Watch(const std::string& job_id,
                                      const std::function<void(const v1::JobStatus&)>& on_status);

 public:
  class Impl;  // the gRPC stub; defined in client.cc

 private:
  std::unique_ptr<Impl> impl_;
};

// Loads a job file with overrides, validates it, and packs its source folder.
// A `job_file` of "-" reads the job from stdin, with relative paths against
// the current folder.
absl::StatusOr<v1::SubmitJobRequest> PrepareSubmit(const std::string& job_file,
                                                   const std::vector<std::string>& overrides);

// The status as one JSON object.
std::string StatusJson(const v1::JobStatus& status);
// A human summary of several lines, with control bytes escaped.
std::string StatusText(const v1::JobStatus& status);

// Renders progress on a terminal (one redrawn line) or as plain lines, and
// each of the job's notes once.
class ProgressPrinter {
 public:
  // Lines are printed at most every 2 s on `clock` (when not a terminal).
  explicit ProgressPrinter(bool tty, Clock* clock = RealClock::Get()) : tty_(tty), clock_(clock) {}
  void Update(const v1::JobStatus& status);
  void Done();

 private:
  bool tty_;
  Clock* clock_;
  std::string last_line_;
  int64_t last_print_ms_ = 0;
  bool drawn_ = false;
  int notes_printed_ = 0;
};

}  // namespace prs::cli

#endif  // PRS_CLI_CLIENT_H_

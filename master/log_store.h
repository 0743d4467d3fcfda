#ifndef PRS_MASTER_LOG_STORE_H_
#define PRS_MASTER_LOG_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/message_limits.h"

namespace prs::master {

// Checks a path of a job's log tree as sent by an agent: relative, no empty,
// "." or ".." components, and under user/, sys/node/ or perf/ (the parts
// agents own). INVALID_ARGUMENT otherwise, naming the path.
absl::Status ValidateShippedLogPath(absl::string_view path);
// The same, and the path is one of node `node`'s own: under
// sys/node/NODE/, user/{stdout,stderr,error,entry_script_log}/NODE/ or
// perf/NODE/. PERMISSION_DENIED for another node's file or the master's own.
absl::Status ValidateNodeLogPath(absl::string_view path, absl::string_view node);

// Checks a path a client asks to read: relative and inside the tree.
absl::Status ValidateReadLogPath(absl::string_view path);

// The most one ReadLog returns (docs/limits.md).
inline constexpr int64_t kMaxReadLogBytes = 1 << 20;
// The most one ShipLogs carries: kMaxShipLogsBytes, common/message_limits.h.

// The log trees of jobs on the master's disk. Appends are idempotent by
// offset, so an agent can resend after a reconnect without duplicating bytes.
// Thread-safe: appends are serialized by one mutex (disk work only; no other
// lock is held).
class LogStore {
 public:
  // Appends `data`, which starts at `offset` in the agent's copy, to
  // `log_dir/path`, writing only the bytes the master does not have yet.
  // Returns the master's size afterwards (smaller than offset when the agent
  // is ahead: it must resend from there).
  absl::StatusOr<int64_t> Append(const std::string& log_dir, const std::string& path,
                                 int64_t offset, absl::string_view data);

  // Replaces `log_dir/path` with `data` (atomically); returns its size.
  absl::StatusOr<int64_t> Replace(const std::string& log_dir, const std::string& path,
                                  absl::string_view data);

  struct File {
    std::string path;  // relative
    int64_t size = 0;
  };
  // Every regular file under log_dir, sorted.
  static std::vector<File> List(const std::string& log_dir);
  // Up to max_bytes from offset; sets *size to the file's size.
  static absl::StatusOr<std::string> Read(const std::string& log_dir, const std::string& path,
                                          int64_t offset, int64_t max_bytes, int64_t* size);

 private:
  absl::Mutex mu_;
};

}  // namespace prs::master

#endif  // PRS_MASTER_LOG_STORE_H_

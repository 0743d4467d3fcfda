#ifndef PRS_AGENT_LOG_APPENDER_H_
#define PRS_AGENT_LOG_APPENDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"

namespace prs::agent {

// Appends records to the agent's log files, keeping those that cannot be
// written now (no space, no file descriptor left) and writing them, in order,
// before the next record of the same file or at the next Retry(). A record is
// dropped only past `max_kept_bytes` in all, and the drop is counted.
// Up to kMaxOpenFiles files written stay open (two records per mini-batch
// would otherwise cost an open and a close each); CloseFiles() closes them,
// and a file removed meanwhile is made again. A file renamed meanwhile keeps
// its records: the agent's log files are its own, nobody rotates them.
// Thread-safe.
class LogAppender {
 public:
  static constexpr size_t kMaxOpenFiles = 64;

  explicit LogAppender(int64_t max_kept_bytes = 64 << 20) : max_kept_bytes_(max_kept_bytes) {}
  ~LogAppender();
  LogAppender(const LogAppender&) = delete;
  LogAppender& operator=(const LogAppender&) = delete;

  // Appends `text` to `path` (creating it and its folder); false when it was
  // kept for later.
  bool Append(const std::string& path, const std::string& text);
  // Writes what was kept; the number of files still behind.
  int Retry();
  // Records dropped because too much was kept.
  int64_t dropped() const;
  // Closes the files held open (a job stopped: its folder may go).
  void CloseFiles();

 private:
  bool FlushLocked(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `text` at the end of `path` through a held descriptor.
  bool WriteLocked(const std::string& path, const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseFilesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_kept_bytes_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> kept_ ABSL_GUARDED_BY(mu_);
  int64_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace prs::agent

#endif  // PRS_AGENT_LOG_APPENDER_H_

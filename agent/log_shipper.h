#ifndef PRS_AGENT_LOG_SHIPPER_H_
#define PRS_AGENT_LOG_SHIPPER_H_

// Shipping the log trees of this agent's jobs to the master: what grew in
// user/, sys/node/ and perf/ is sent every second (ShipLogs), and once a job
// no longer runs here, its rest and then `complete`.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/log_appender.h"
#include "agent/master_client.h"

namespace prs::agent {

// Sends the log files in requests of at most kBatchBytes, so that memory stays
// bounded whatever the files' sizes. The master answers with its size of each
// file, so a reconnect (or a master restart) resumes at the right offset.
// Thread-safe; Run() runs on one thread of its own.
class LogShipper {
 public:
  static constexpr int64_t kChunkBytes = 256 << 10;
  static constexpr int64_t kBatchBytes = 1 << 20;

  // `current_job` returns the job that runs on this node now (empty when
  // none): its tree is shipped, but not completed. The client and the
  // appender must outlive the shipper.
  LogShipper(MasterClient* client, LogAppender* appender, std::function<std::string()> current_job);

  // Ships `job_id`'s tree at `log_dir` until the job no longer runs here and
  // its logs are complete on the master.
  void Add(const std::string& job_id, const std::string& log_dir);
  // A job stopped: ship at once rather than within a second, since the
  // master publishes a job's end when its log tree is complete.
  void ShipNow();
  // Ships every second until Finish(); then a last round that ships and
  // completes every job it can with the session it has.
  void Run();
  void Finish();

  // One round: ships what grew, and completes the jobs that no longer run.
  // `last`: the agent is exiting; no new session is registered for it. Run()
  // calls it; a test may call it instead of Run(), never beside it (the
  // shipped offsets are that one thread's).
  void ShipOnce(bool last);

 private:
  struct ShippedFile {
    int64_t offset = 0;  // bytes the master has
    ino_t inode = 0;     // a new inode means the file was rewritten
  };
  using Files = std::map<std::string, ShippedFile>;  // by path in the tree

  // Ships one job's changed files; true when there was nothing left to send.
  bool ShipJob(const std::string& job_id, const std::string& log_dir, bool last);
  // Appends the pieces of `rel` not yet shipped to `batch`, flushing it as it
  // fills; false when a flush failed.
  bool ShipFile(const std::string& path, const std::string& rel, ShippedFile& file,
                std::vector<v1::LogChunk>& batch, int64_t& batch_bytes,
                const std::function<bool()>& flush);
  // Sends `batch`; false when it could not be sent.
  bool Flush(const std::string& job_id, bool last, std::vector<v1::LogChunk>& batch, Files& files);
  // ShipLogs with no pieces and `complete`: this agent's part of the job's
  // log tree is all on the master.
  bool SendComplete(const std::string& job_id, bool last);
  std::string Session(bool last);

  MasterClient* const client_;
  LogAppender* const appender_;
  const std::function<std::string()> current_job_;

  std::map<std::string, Files> shipped_;  // by job; the Run() thread's only

  absl::Mutex mu_;
  bool ship_now_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> jobs_ ABSL_GUARDED_BY(mu_);  // job id -> log dir
};

}  // namespace prs::agent

#endif  // PRS_AGENT_LOG_SHIPPER_H_

#ifndef PRS_AGENT_JOB_LOG_H_
#define PRS_AGENT_JOB_LOG_H_

// The records the agent writes into a job's log tree: sys/node/<node>/<file>
// lines (agent.txt, processNNN.txt) and the user/error/<node>/<process>.txt
// record of a failed attempt.

#include <string>

#include "agent/log_appender.h"
#include "common/clock.h"
#include "prs/v1/agent_service.pb.h"

namespace prs::agent {

// A system log record's level; records below the job's logging_level are
// not written.
enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2 };

// The job's logging_level ("DEBUG", "INFO", "WARNING"); INFO for anything
// else.
LogLevel ParseLogLevel(const std::string& logging_level);

// Writes one job's node records through a LogAppender, which keeps what
// cannot be written now. Thread-safe (the appender is); the appender and the
// clock must outlive it.
class JobLog {
 public:
  JobLog(std::string log_dir, std::string node_id, LogLevel level, LogAppender* appender,
         Clock* clock);

  // Appends "time|LEVEL|pid|message" to sys/node/<node>/<file> when `level`
  // is at least the job's.
  void Node(const std::string& file, LogLevel level, const std::string& message) const;
  // Appends the attempt's error, its inputs and its traceback to
  // user/error/<node>/<process>.txt.
  void Error(const v1::Task& task, const v1::TaskResult& result) const;

 private:
  void Append(const std::string& path, const std::string& text) const;

  const std::string log_dir_;
  const std::string node_id_;
  const LogLevel level_;
  LogAppender* const appender_;
  Clock* const clock_;
};

}  // namespace prs::agent

#endif  // PRS_AGENT_JOB_LOG_H_

#include "agent/job_log.h"

#include <unistd.h>

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/tabular_descriptor.h"
#include "spdlog/spdlog.h"

namespace prs::agent {

namespace fs = std::filesystem;

namespace {
// This process's id, asked once (a record per mini-batch names it).
pid_t Pid() {
  static const pid_t pid = ::getpid();
  return pid;
}
}  // namespace

LogLevel ParseLogLevel(const std::string& logging_level) {
  if (logging_level == "DEBUG") return LogLevel::kDebug;
  if (logging_level == "WARNING") return LogLevel::kWarning;
  return LogLevel::kInfo;
}

JobLog::JobLog(std::string log_dir, std::string node_id, LogLevel level, LogAppender* appender,
               Clock* clock)
    : log_dir_(std::move(log_dir)),
      node_id_(std::move(node_id)),
      level_(level),
      appender_(appender),
      clock_(clock) {}

void JobLog::Node(const std::string& file, LogLevel level, const std::string& message) const {
  if (level < level_) return;
  static const char* kNames[] = {"DEBUG", "INFO", "WARNING"};
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", clock_->Now(), absl::UTCTimeZone()), "|",
                   kNames[static_cast<int>(level)], "|", Pid(), "|", message, "\n");
  Append((fs::path(log_dir_) / "sys/node" / node_id_ / file).string(), line);
}

void JobLog::Error(const v1::Task& task, const v1::TaskResult& r) const {
  const std::string process = r.process_name().empty() ? "agent" : r.process_name();
  std::string text = absl::StrCat(
      absl::FormatTime("%Y-%m-%d %H:%M:%S", clock_->Now(), absl::UTCTimeZone()), " UTC mini-batch ",
      r.task_id(), " ", v1::AttemptStatus_Name(r.status()), ": ", r.error(), "\ninputs:\n");
  // Every input, so that a failed one can be found (mini_batch_size bounds them).
  for (const auto& item : task.items()) absl::StrAppend(&text, "  ", DescribeItem(item), "\n");
  absl::StrAppend(&text, r.error_detail(),
                  r.error_detail().empty() || r.error_detail().back() == '\n' ? "" : "\n", "\n");
  Append((fs::path(log_dir_) / "user/error" / node_id_ / (process + ".txt")).string(), text);
}

void JobLog::Append(const std::string& path, const std::string& text) const {
  if (!appender_->Append(path, text)) {
    spdlog::warn("cannot write {} now; the record is kept and written later", path);
  }
}

}  // namespace prs::agent

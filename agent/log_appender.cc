#include "agent/log_appender.h"

#include "common/file_io.h"

namespace prs::agent {

bool LogAppender::FlushLocked(const std::string& path) {
  auto it = kept_.find(path);
  if (it == kept_.end()) return true;
  if (!AppendToFile(path, it->second).ok()) return false;
  kept_bytes_ -= static_cast<int64_t>(it->second.size());
  kept_.erase(it);
  return true;
}

bool LogAppender::Append(const std::string& path, const std::string& text) {
  absl::MutexLock lock(&mu_);
  // What was kept goes first, so the file keeps its order.
  if (FlushLocked(path) && AppendToFile(path, text).ok()) return true;
  if (kept_bytes_ + static_cast<int64_t>(text.size()) > max_kept_bytes_) {
    ++dropped_;
    return false;
  }
  kept_[path] += text;
  kept_bytes_ += static_cast<int64_t>(text.size());
  return false;
}

int LogAppender::Retry() {
  absl::MutexLock lock(&mu_);
  int behind = 0;
  for (auto it = kept_.begin(); it != kept_.end();) {
    const std::string path = (it++)->first;
    if (!FlushLocked(path)) ++behind;
  }
  return behind;
}

int64_t LogAppender::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace prs::agent

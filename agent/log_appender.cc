#include "agent/log_appender.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/file_io.h"

namespace prs::agent {

bool LogAppender::FlushLocked(const std::string& path) {
  auto it = kept_.find(path);
  if (it == kept_.end()) return true;
  if (!WriteLocked(path, it->second)) return false;
  kept_bytes_ -= static_cast<int64_t>(it->second.size());
  kept_.erase(it);
  return true;
}

bool LogAppender::Append(const std::string& path, const std::string& text) {
  absl::MutexLock lock(&mu_);
  // What was kept goes first, so the file keeps its order.
  if (FlushLocked(path) && WriteLocked(path, text)) return true;
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

LogAppender::~LogAppender() {
  absl::MutexLock lock(&mu_);
  CloseFilesLocked();
}

bool LogAppender::WriteLocked(const std::string& path, const std::string& text) {
  auto it = open_.find(path);
  if (it != open_.end()) {
    // A file removed meanwhile (a cleaned folder) is made again, as it would
    // be by an open per record.
    struct stat st {};
    if (::fstat(it->second, &st) != 0 || st.st_nlink == 0) {
      ::close(it->second);
      open_.erase(it);
      it = open_.end();
    }
  }
  if (it == open_.end()) {
    if (open_.size() >= kMaxOpenFiles) {  // one goes: more workers than files held
      ::close(open_.begin()->second);
      open_.erase(open_.begin());
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT &&
        MakeDirs(std::filesystem::path(path).parent_path().string()).ok()) {
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) CloseFilesLocked();  // the next try has room
      return false;
    }
    it = open_.emplace(path, fd).first;
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(it->second, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // All or nothing, so that the record is kept and written later whole:
      // cut off the part written (the file's one writer is this process).
      struct stat st {};
      if (done > 0 && ::fstat(it->second, &st) == 0 && st.st_size >= static_cast<off_t>(done)) {
        (void)!::ftruncate(it->second, st.st_size - static_cast<off_t>(done));
      }
      ::close(it->second);
      open_.erase(it);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void LogAppender::CloseFiles() {
  absl::MutexLock lock(&mu_);
  CloseFilesLocked();
}

void LogAppender::CloseFilesLocked() {
  for (const auto& [path, fd] : open_) ::close(fd);
  open_.clear();
}

int64_t LogAppender::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace prs::agent

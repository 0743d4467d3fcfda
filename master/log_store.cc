#include "master/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/text.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

absl::Status CheckRelative(absl::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("log path '", Printable(path),
                                                   "' must be relative to the job's logs/ folder"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "log path '", Printable(path), "' leaves the job's log tree or has an empty part"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateShippedLogPath(absl::string_view path) {
  if (auto s = CheckRelative(path); !s.ok()) return s;
  for (absl::string_view prefix : {"user/", "sys/node/", "perf/"}) {
    if (absl::StartsWith(path, prefix)) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("log path '", Printable(path),
                   "' is not under user/, sys/node/ or perf/, the parts agents write"));
}

absl::Status ValidateNodeLogPath(absl::string_view path, absl::string_view node) {
  if (auto s = ValidateShippedLogPath(path); !s.ok()) return s;
  for (absl::string_view part : {"sys/node/", "user/stdout/", "user/stderr/", "user/error/",
                                 "user/entry_script_log/", "perf/"}) {
    if (absl::StartsWith(path, absl::StrCat(part, node, "/"))) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("log path '", Printable(path), "' is not one of node ", Printable(node),
                   "'s own files (sys/node/", Printable(node), "/..., user/*/", Printable(node),
                   "/..., perf/", Printable(node), "/...)"));
}

absl::Status ValidateReadLogPath(absl::string_view path) { return CheckRelative(path); }

absl::StatusOr<int64_t> LogStore::Append(const std::string& log_dir, const std::string& path,
                                         int64_t offset, absl::string_view data) {
  if (auto s = ValidateShippedLogPath(path); !s.ok()) return s;
  if (offset < 0) return absl::InvalidArgumentError("log chunk offset is negative");
  const fs::path full = fs::path(log_dir) / path;
  absl::MutexLock lock(&mu_);
  struct stat st;
  int64_t size = ::stat(full.c_str(), &st) == 0 ? st.st_size : 0;
  if (offset > size || offset + static_cast<int64_t>(data.size()) <= size) return size;
  if (auto s = MakeDirs(full.parent_path().string()); !s.ok()) return s;
  int fd = ::open(full.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", full.string(), ": ", std::strerror(errno)));
  }
  const absl::string_view rest = data.substr(static_cast<size_t>(size - offset));
  absl::Status s = WriteAll(fd, rest, full.string());
  ::close(fd);
  if (!s.ok()) return absl::DataLossError(s.message());
  return size + static_cast<int64_t>(rest.size());
}

absl::StatusOr<int64_t> LogStore::Replace(const std::string& log_dir, const std::string& path,
                                          absl::string_view data) {
  if (auto s = ValidateShippedLogPath(path); !s.ok()) return s;
  const fs::path full = fs::path(log_dir) / path;
  absl::MutexLock lock(&mu_);
  if (auto s = MakeDirs(full.parent_path().string()); !s.ok()) return s;
  if (auto s = WriteFileAtomic(full.string(), data); !s.ok()) return s;
  return static_cast<int64_t>(data.size());
}

std::vector<LogStore::File> LogStore::List(const std::string& log_dir) {
  std::vector<File> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(log_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const std::string rel = fs::relative(it->path(), log_dir, fec).string();
    if (absl::EndsWith(rel, ".tmp")) continue;  // a file being replaced
    // Names come from node ids and process names, which are UTF-8; anything
    // else was not written by prs and could not be sent as a path.
    if (!IsValidUtf8(rel)) continue;
    files.push_back({rel, static_cast<int64_t>(it->file_size(fec))});
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

absl::StatusOr<std::string> LogStore::Read(const std::string& log_dir, const std::string& path,
                                           int64_t offset, int64_t max_bytes, int64_t* size) {
  if (auto s = ValidateReadLogPath(path); !s.ok()) return s;
  if (offset < 0) return absl::InvalidArgumentError("ReadLog: offset is negative");
  const fs::path full = fs::path(log_dir) / path;
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("no log file '", Printable(path),
                                            "' in this job's tree; `prs logs JOB` lists them"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("log path '", Printable(path), "' is not a file of the tree"));
  }
  *size = st.st_size;
  // At most 1 MiB a call, as the API says, whatever the caller asks.
  if (max_bytes <= 0 || max_bytes > kMaxReadLogBytes) max_bytes = kMaxReadLogBytes;
  std::string out;
  if (offset < st.st_size) {
    out.resize(static_cast<size_t>(std::min<int64_t>(max_bytes, st.st_size - offset)));
    ssize_t n = ::pread(fd, out.data(), out.size(), offset);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  return out;
}

}  // namespace prs::master

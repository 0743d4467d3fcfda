#include "common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace prs {
namespace fs = std::filesystem;

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view text, const std::string& path) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return absl::ErrnoToStatus(n < 0 ? errno : EIO, absl::StrCat("cannot write ", path));
    text.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string UniqueTempName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  // Ends in ".tmp": listings of the log tree leave out files being replaced.
  return absl::StrCat(path, ".", ::getpid(), ".", counter.fetch_add(1), ".tmp");
}

absl::Status CreateExclusive(const std::string& path, absl::string_view contents) {
  // 0666: the umask decides, as for any file a program creates.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path));
  absl::Status s = WriteAll(fd, contents, path);
  if (::close(fd) != 0 && s.ok()) {
    s = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", path));
  }
  return s;
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents) {
  const std::string tmp = UniqueTempName(path);
  absl::Status s = CreateExclusive(tmp, contents);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = absl::ErrnoToStatus(errno, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

absl::Status AppendToFile(const std::string& path, absl::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    if (auto s = MakeDirs(fs::path(path).parent_path().string()); !s.ok()) return s;
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot append to ", path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      // All or nothing, so that the caller can simply try again: cut off the
      // part written (the file's one writer is this process).
      struct stat st {};
      if (done > 0 && ::fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(done)) {
        (void)!::ftruncate(fd, st.st_size - static_cast<off_t>(done));
      }
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot append to ", path, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot append to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

namespace {

// Makes sure `path` exists and starts with `header`. The file is built under a
// temporary name and published with link(), which fails if `path` exists, so
// no appender ever sees the file without its header and two creators cannot
// both write one.
absl::Status EnsureCsv(const std::string& path, absl::string_view header) {
  if (::access(path.c_str(), F_OK) == 0) return absl::OkStatus();
  const std::string contents = absl::StrCat(header, "\n");
  const std::string tmp = UniqueTempName(path);
  if (absl::Status s = CreateExclusive(tmp, contents); !s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc == 0 || link_errno == EEXIST) return absl::OkStatus();
  // A filesystem without hard links: create in place, with a small window for a racing row.
  absl::Status s = CreateExclusive(path, contents);
  return absl::IsAlreadyExists(s) ? absl::OkStatus() : s;
}

}  // namespace

absl::Status AppendCsv(const std::string& path, absl::string_view header, absl::string_view rows) {
  for (int attempt = 0;; ++attempt) {
    if (absl::Status s = EnsureCsv(path, header); !s.ok()) return s;
    if (rows.empty()) return absl::OkStatus();
    // No O_CREAT: a file deleted since EnsureCsv is made again with its header.
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT && attempt == 0) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot append to ", path));
    }
    absl::Status s = WriteAll(fd, rows, path);
    ::close(fd);
    return s;
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CsvField(absl::string_view value) {
  if (value.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(value);
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

std::string CsvRow(const std::vector<std::string>& fields) {
  return absl::StrCat(
      absl::StrJoin(fields, ",",
                    [](std::string* out, const std::string& f) { out->append(CsvField(f)); }),
      "\n");
}

}  // namespace prs

#include "master/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>  // renameat2

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::PermissionDeniedError(
      absl::StrCat("cannot ", what, " output file ", path, ": ", std::strerror(errno)));
}

// rename() within one folder that never replaces an existing file:
// renameat2(RENAME_NOREPLACE), or where the filesystem lacks it (NFS, some
// FUSE), linkat() and unlinkat(), which fail with EEXIST as atomically. 0, or
// -1 with errno.
int MoveNoReplace(int dir, const std::string& from, const std::string& to) {
  if (::renameat2(dir, from.c_str(), dir, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
  if (::linkat(dir, from.c_str(), dir, to.c_str(), 0) == 0) return ::unlinkat(dir, from.c_str(), 0);
  if (errno == EEXIST) return -1;
  // No hard links either: check, then rename (a race no prs process runs).
  if (::faccessat(dir, to.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::renameat(dir, from.c_str(), dir, to.c_str());
}

// The real path of an open folder.
std::string RealPathOf(int dir) {
  std::error_code ec;
  return fs::read_symlink(absl::StrCat("/proc/self/fd/", dir), ec).string();
}

// `path` is `root` or inside it, comparing whole components.
bool Inside(const fs::path& path, const fs::path& root) {
  const auto [end, _] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return end == root.end();
}

// Lists in `dir` the file `name` (inode `ino`) as one prs made, where the
// filesystem keeps no extended attributes to mark it with.
void ListUnmarked(int dir, const std::string& name, ino_t ino) {
  const int fd =
      ::openat(dir, kUnmarkedOutputsFile,
               O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) return;  // then a later job refuses the file: safe
  const std::string line = absl::StrCat(ino, "\t", name, "\n");
  if (::write(fd, line.data(), line.size()) < 0) {
    // As above: the file is not recognized later, and refused.
  }
  ::close(fd);
}

// `name` (inode `ino`) is in `dir`'s list of unmarked outputs.
bool ListedUnmarked(int dir, const std::string& name, ino_t ino) {
  const int fd =
      ::openat(dir, kUnmarkedOutputsFile, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  // The last MiB: a list longer than that is of outputs long moved aside.
  const off_t from = std::max<off_t>(0, st.st_size - (1 << 20));
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), from);
  if (n <= 0) return false;
  text.resize(static_cast<size_t>(n));
  const std::string line = absl::StrCat(ino, "\t", name, "\n");
  return absl::StartsWith(text, line) || text.find("\n" + line) != std::string::npos;
}

// Whether `name` in `dir` (whose stat is `st`) is a file prs made: it carries
// prs's mark, the folder's list of unmarked outputs names it, or the store
// knows it. Looked at through an O_PATH descriptor checked to be that file:
// nothing is opened for reading (no atime, no FUSE or HSM open).
bool MadeByPrs(int dir, const std::string& name, const struct stat& st, const KnownOutput& known) {
  if (known && known(absl::StrCat(st.st_dev, ":", st.st_ino))) return true;
  const int fd = ::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  struct stat now {};
  if (::fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || now.st_dev != st.st_dev ||
      now.st_ino != st.st_ino) {
    return false;
  }
  const std::string at = absl::StrCat("/proc/self/fd/", fd);
  if (::getxattr(at.c_str(), kOutputMarkAttribute, nullptr, 0) >= 0) return true;
  return ListedUnmarked(dir, name, st.st_ino);
}

// OK when prs may move aside what is at `path` (`name` in `dir`, whose stat is
// `st`) for a new output: only a regular file that prs made.
absl::Status CheckExisting(const std::string& path, int dir, const std::string& name,
                           const struct stat& st, const KnownOutput& known) {
  if (S_ISLNK(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat("the output file ", path,
                     " is a symbolic link; prs writes only a file of its own there: remove it"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the output path ", path,
                     " is not a regular file (a folder, a pipe or a device); prs writes only a "
                     "file of its own there: choose another output or append_row_file_name"));
  }
  if (MadeByPrs(dir, name, st, known)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the output file ", path,
      " exists and prs did not make it; prs moves aside only outputs it wrote, and never "
      "replaces another file: move or delete it, or choose another output or "
      "append_row_file_name"));
}

}  // namespace

std::string SystemFolderOf(const std::filesystem::path& path) {
  if (path == "/") return "/";
  static const char* const kSystem[] = {"/bin",   "/boot", "/dev",  "/etc", "/lib", "/lib32",
                                        "/lib64", "/proc", "/sbin", "/sys", "/usr"};
  for (const char* root : kSystem) {
    if (Inside(path, root)) return root;
  }
  return "";
}

absl::Status OutputFile::CheckPath(const std::string& path, const KnownOutput& known) {
  const std::string folder = fs::path(path).parent_path().string();
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return absl::OkStatus();  // nothing there yet; Start checks again
  absl::Cleanup close_dir = [dir] { ::close(dir); };
  const std::string name = fs::path(path).filename().string();
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return absl::OkStatus();
  return CheckExisting(path, dir, name, st, known);
}

absl::StatusOr<int> OutputFile::OpenFolder() const {
  const std::string folder = fs::path(path_).parent_path().string();
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 && errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat("the output folder ", folder, " is gone"));
  }
  if (dir < 0) return Errno("open the folder of the", path_);
  // Checked on the folder as opened, not on its name: a folder swapped for a
  // link after submit cannot lead the master into its own state, or the
  // system's.
  const std::string real = RealPathOf(dir);
  if (!forbidden_root_.empty() && Inside(real, forbidden_root_)) {
    ::close(dir);
    return absl::PermissionDeniedError(
        absl::StrCat("the output folder ", folder, " leads into the master's state folder ",
                     forbidden_root_, "; prs writes no output there"));
  }
  if (const std::string system = SystemFolderOf(real); !system.empty()) {
    ::close(dir);
    return absl::PermissionDeniedError(absl::StrCat("the output folder ", folder,
                                                    " leads into the system folder ", system,
                                                    "; prs writes no output there"));
  }
  return dir;
}

absl::StatusOr<std::string> OutputFile::Start(const std::string& job_id, absl::Time now) {
  Close();
  if (auto s = MakeDirs(fs::path(path_).parent_path().string()); !s.ok()) return s;
  auto dir = OpenFolder();
  if (!dir.ok()) return dir.status();
  absl::Cleanup close_dir = [fd = *dir] { ::close(fd); };
  const std::string name = fs::path(path_).filename().string();
  std::string note;
  struct stat st {};
  const bool exists = ::fstatat(*dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists) {
    if (auto s = CheckExisting(path_, *dir, name, st, known_); !s.ok()) return s;
    // Never onto another file moved aside: job ids repeat across state
    // folders (each `prs run` has its own), and so may the second.
    const std::string stem =
        absl::StrCat(path_, ".", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()),
                     ".before-", job_id);
    std::string aside = stem;
    int rc = -1;
    for (int n = 1; n <= 1000; ++n) {
      rc = MoveNoReplace(*dir, name, fs::path(aside).filename().string());
      if (rc == 0 || errno != EEXIST) break;
      aside = absl::StrCat(stem, ".", n);
    }
    if (rc != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot move the earlier output ", path_, " aside to ", aside, ": ",
                       std::strerror(errno), "; move or delete it, or choose another output"));
    }
    note = absl::StrCat("the earlier output ", path_, " was moved to ", aside);
  }
  // O_EXCL: a file that appeared since the check is someone's, never emptied.
  fd_ = ::openat(*dir, name.c_str(),
                 O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) {
    absl::Status s =
        errno == EEXIST
            ? absl::FailedPreconditionError(absl::StrCat(
                  "a file appeared at ", path_,
                  " while prs made the job's output there; it is left as it is: move or delete "
                  "it, then submit the job again"))
            : Errno("create", path_);
    if (note.empty()) return s;
    return absl::Status(s.code(), absl::StrCat(s.message(), " (", note, ")"));
  }
  if (auto s = Remember(); !s.ok()) return s;
  // Marked as prs's, so that a later job may move it aside. A filesystem
  // without user extended attributes (NFSv3, tmpfs before Linux 6.6) keeps
  // no mark: the folder's list of unmarked outputs stands in (and, for this
  // master, the store's record of the file's identity).
  if (::fsetxattr(fd_, kOutputMarkAttribute, job_id.data(), job_id.size(), 0) != 0) {
    ListUnmarked(*dir, name, ino_);
  }
  return note;
}

absl::Status OutputFile::Reopen(int64_t length, const std::string& id) {
  Close();
  auto dir = OpenFolder();
  if (!dir.ok() && !absl::IsNotFound(dir.status())) return dir.status();
  if (dir.ok()) {
    fd_ = ::openat(*dir, fs::path(path_).filename().string().c_str(),
                   O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    const int saved = errno;
    ::close(*dir);
    errno = saved;
  } else {
    fd_ = -1;
    errno = ENOENT;
  }
  if (fd_ < 0 && errno == ENOENT && length == 0) {
    // Nothing committed and no file: the job starts its output again (and
    // records the new file's identity).
    return absl::NotFoundError(absl::StrCat("no output file ", path_, " yet"));
  }
  if (fd_ < 0) {
    if (errno != ENOENT) return Errno("open", path_);
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_, " is gone, and with it the ", length,
        " bytes of rows committed to it: it was deleted or moved outside prs; submit the job "
        "again"));
  }
  if (auto s = Remember(); !s.ok()) return s;
  if (!id.empty() && this->id() != id) {
    Close();
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_,
        " is not the file this job wrote: another job or program has made a new one there "
        "since (this job's rows may be in a file moved aside, ",
        path_, ".*.before-*); it is left as it is; submit the job again"));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Errno("check", path_);
  if (st.st_size < length) {
    const int64_t size = st.st_size;
    Close();
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_, " holds ", size, " bytes, fewer than the ", length,
        " bytes of rows committed to it: it was cut or replaced outside prs, and rows are "
        "lost; submit the job again"));
  }
  // Rows whose commit did not happen are this job's own: they go.
  if (::ftruncate(fd_, length) != 0) return Errno("truncate", path_);
  return absl::OkStatus();
}

std::string OutputFile::id() const { return absl::StrCat(dev_, ":", ino_); }

absl::Status OutputFile::Remember() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Errno("check", path_);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  return absl::OkStatus();
}

absl::Status OutputFile::CheckSame(int64_t length) const {
  struct stat open {
  }, at_path{};
  if (::fstat(fd_, &open) == 0 && open.st_nlink == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_,
        " was deleted while the job ran (or the folder that held it); the rows written to it "
        "are lost, so the job stops here; submit it again"));
  }
  if (::stat(path_.c_str(), &at_path) != 0 || at_path.st_dev != dev_ || at_path.st_ino != ino_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_,
        " was moved or replaced while the job ran; the job stops rather than write rows where "
        "nobody looks; submit it again"));
  }
  if (open.st_size != length) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the output file ", path_, " holds ", static_cast<int64_t>(open.st_size),
        " bytes where the job committed ", length,
        ": something other than this job wrote to it or cut it while the job ran; the job "
        "stops rather than mix rows; submit it again"));
  }
  return absl::OkStatus();
}

absl::Status OutputFile::Append(int64_t length, const std::string& data) {
  absl::Status s = WriteAll(fd_, data, absl::StrCat("the output file ", path_));
  if (s.ok()) return s;
  (void)Truncate(length);
  return absl::DataLossError(s.message());
}

absl::Status OutputFile::Sync() {
  if (::fdatasync(fd_) != 0) return Errno("sync", path_);
  return absl::OkStatus();
}

absl::Status OutputFile::SyncFolder() const {
  auto dir = OpenFolder();
  if (!dir.ok()) return dir.status();
  const int rc = ::fsync(*dir);
  ::close(*dir);
  if (rc != 0) return Errno("sync the folder of the", path_);
  return absl::OkStatus();
}

absl::Status OutputFile::Truncate(int64_t length) {
  if (::ftruncate(fd_, length) != 0) return Errno("roll back", path_);
  return absl::OkStatus();
}

void OutputFile::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace prs::master

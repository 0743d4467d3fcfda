#include "common/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/file_io.h"
#include "common/sizes.h"

namespace prs {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kPermissionMask = 0777;
constexpr uint32_t kDefaultMode = 0644;

// One file found under the packed folder.
struct PackEntry {
  std::string relative;  // '/'-separated, relative to the packed folder.
  fs::path path;
  uint32_t mode = 0;
  int64_t size = 0;
};

// std::filesystem reports errno values in std::error_code.
absl::Status FilesystemError(const std::error_code& error, absl::string_view what) {
  return absl::ErrnoToStatus(error.value(), what);
}

absl::Status TooBig(absl::string_view dir, int64_t total, size_t files, int64_t max_bytes,
                    const PackEntry& largest) {
  return absl::ResourceExhaustedError(
      absl::StrCat("source_directory '", dir, "' holds ", FormatBytes(total), " in ", files,
                   " files, more than the snapshot limit of ", FormatBytes(max_bytes),
                   " (the largest is ", largest.relative, ", ", FormatBytes(largest.size),
                   "); move data out of source_directory into inputs or side_inputs"));
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path.string()));
  std::string content;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat("cannot read ", path.string()));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return content;
}

absl::Status WriteFile(const fs::path& path, const std::string& content, uint32_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path.string()));
  if (absl::Status s = WriteAll(fd, content, path.string()); !s.ok()) {
    ::close(fd);
    return s;
  }
  // fchmod rather than open's mode: the umask must not change the recorded bits.
  if (::fchmod(fd, mode) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("cannot set the mode of ", path.string()));
  }
  if (::close(fd) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

absl::Status CheckSnapshotPath(const std::string& path) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot: file path '", absl::CEscape(path),
                                                   "' ", why,
                                                   "; a snapshot holds only relative paths "
                                                   "inside its folder"));
  };
  if (path.empty()) return bad("is empty");
  if (path.front() == '/') return bad("is absolute");
  if (path.find('\0') != std::string::npos) return bad("contains a NUL character");
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty()) return bad("has an empty component");
    if (part == "." || part == "..") return bad(absl::StrCat("has a '", part, "' component"));
  }
  return absl::OkStatus();
}

absl::Status CheckSnapshotPaths(const v1::SourceSnapshot& snapshot) {
  std::set<std::string> files;
  for (const v1::SnapshotFile& file : snapshot.files()) {
    if (absl::Status status = CheckSnapshotPath(file.path()); !status.ok()) return status;
    if (!files.insert(file.path()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot: file path '", absl::CEscape(file.path()), "' appears twice"));
    }
  }
  for (const std::string& file : files) {
    for (size_t slash = file.find('/'); slash != std::string::npos;
         slash = file.find('/', slash + 1)) {
      if (files.count(file.substr(0, slash)) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("snapshot: '", file.substr(0, slash),
                                                       "' is both a file and the folder of '", file,
                                                       "'"));
      }
    }
  }
  return absl::OkStatus();
}

// A name no other unpack (in this or another process) uses at the same time.
std::string UniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  return absl::StrCat(::getpid(), "-", counter.fetch_add(1), "-", random() % 1000000);
}

// Puts the folder `fresh` at `dest`, replacing what is there, so that `dest`
// shows either the old or the new contents, never a mix.
absl::Status MoveIntoPlace(const fs::path& fresh, const fs::path& dest) {
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) {
    std::error_code ignored;
    fs::remove_all(fresh, ignored);  // Now the previous contents.
    return absl::OkStatus();
  }
  const int exchange_error = errno;
  if (exchange_error == ENOENT) {  // Nothing to replace.
    if (::rename(fresh.c_str(), dest.c_str()) == 0) return absl::OkStatus();
    return absl::ErrnoToStatus(
        errno, absl::StrCat("cannot rename ", fresh.string(), " to ", dest.string()));
  }
  if (exchange_error != EINVAL && exchange_error != ENOSYS && exchange_error != ENOTSUP) {
    return absl::ErrnoToStatus(exchange_error, absl::StrCat("cannot replace ", dest.string()));
  }
  // The filesystem cannot exchange: move the old folder aside first. A reader
  // may briefly find no folder, but never a half-written one.
  const fs::path old =
      dest.parent_path() / absl::StrCat(".", dest.filename().string(), ".old-", UniqueSuffix());
  if (::rename(dest.c_str(), old.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot move ", dest.string(), " aside"));
  }
  if (::rename(fresh.c_str(), dest.c_str()) != 0) {
    const int error = errno;
    ::rename(old.c_str(), dest.c_str());  // Best effort: put the old one back.
    return absl::ErrnoToStatus(
        error, absl::StrCat("cannot rename ", fresh.string(), " to ", dest.string()));
  }
  std::error_code ignored;
  fs::remove_all(old, ignored);
  return absl::OkStatus();
}

// `dir` (as the user gave it, for messages) exists and is a folder.
absl::Status CheckPackRoot(const fs::path& root, const std::string& dir) {
  std::error_code error;
  const fs::file_status root_status = fs::status(root, error);
  if (root_status.type() == fs::file_type::not_found) {
    return absl::NotFoundError(absl::StrCat("source_directory '", dir, "' does not exist"));
  }
  if (error) {
    return FilesystemError(error, absl::StrCat("cannot read source_directory '", dir, "'"));
  }
  if (!fs::is_directory(root_status)) {
    return absl::InvalidArgumentError(absl::StrCat("source_directory '", dir, "' is not a folder"));
  }
  return absl::OkStatus();
}

// The files to pack under `root`, sorted by relative path, with their sizes
// as listed.
absl::StatusOr<std::vector<PackEntry>> ListPackEntries(const fs::path& root,
                                                       const std::string& dir) {
  std::vector<PackEntry> entries;
  std::error_code error;
  // Without follow_directory_symlink: a link to a folder could make a cycle.
  fs::recursive_directory_iterator it(root, error);
  for (const fs::recursive_directory_iterator end; !error && it != end; it.increment(error)) {
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    std::error_code entry_error;
    const fs::file_status link_status = entry.symlink_status(entry_error);
    if (entry_error) {
      return FilesystemError(entry_error, absl::StrCat("cannot read ", entry.path().string()));
    }
    if (name == "__pycache__" || name == ".git") {
      if (fs::is_directory(link_status)) it.disable_recursion_pending();
      continue;
    }
    if (fs::is_directory(link_status)) continue;  // Its files come next.
    const fs::file_status target = entry.status(entry_error);
    if (target.type() == fs::file_type::not_found) continue;  // A dangling symlink.
    if (entry_error) {
      return FilesystemError(entry_error, absl::StrCat("cannot read ", entry.path().string()));
    }
    if (!fs::is_regular_file(target)) continue;
    const uintmax_t size = fs::file_size(entry.path(), entry_error);
    if (entry_error) {
      return FilesystemError(entry_error, absl::StrCat("cannot read ", entry.path().string()));
    }
    entries.push_back(PackEntry{
        entry.path().lexically_relative(root).generic_string(), entry.path(),
        static_cast<uint32_t>(target.permissions()) & kPermissionMask, static_cast<int64_t>(size)});
  }
  if (error) {
    return FilesystemError(error, absl::StrCat("cannot list source_directory '", dir, "'"));
  }
  std::sort(entries.begin(), entries.end(),
            [](const PackEntry& a, const PackEntry& b) { return a.relative < b.relative; });
  return entries;
}

PackEntry Largest(const std::vector<PackEntry>& entries) {
  auto max =
      std::max_element(entries.begin(), entries.end(),
                       [](const PackEntry& a, const PackEntry& b) { return a.size < b.size; });
  return max == entries.end() ? PackEntry{} : *max;
}

// Reads the listed files into a snapshot, checking max_bytes again as it
// goes: a file may have grown since it was listed.
absl::StatusOr<v1::SourceSnapshot> ReadPackEntries(std::vector<PackEntry> entries,
                                                   const std::string& dir, int64_t max_bytes) {
  v1::SourceSnapshot snapshot;
  int64_t packed = 0;
  for (PackEntry& entry : entries) {
    absl::StatusOr<std::string> content = ReadFile(entry.path);
    if (!content.ok()) return content.status();
    entry.size = static_cast<int64_t>(content->size());
    packed += entry.size;
    if (max_bytes >= 0 && packed > max_bytes) {
      return TooBig(dir, packed, entries.size(), max_bytes, Largest(entries));
    }
    v1::SnapshotFile* file = snapshot.add_files();
    file->set_path(entry.relative);
    file->set_mode(entry.mode);
    file->set_content(*std::move(content));
  }
  return snapshot;
}

}  // namespace

absl::StatusOr<v1::SourceSnapshot> PackDirectory(const std::string& dir, int64_t max_bytes) {
  std::string root_text = dir;
  while (root_text.size() > 1 && root_text.back() == '/') root_text.pop_back();
  const fs::path root(root_text);
  if (absl::Status status = CheckPackRoot(root, dir); !status.ok()) return status;

  absl::StatusOr<std::vector<PackEntry>> entries = ListPackEntries(root, dir);
  if (!entries.ok()) return entries.status();
  int64_t total = 0;
  for (const PackEntry& entry : *entries) total += entry.size;
  // Checked before reading anything: a 50 GB data file must not be loaded.
  if (max_bytes >= 0 && total > max_bytes) {
    return TooBig(dir, total, entries->size(), max_bytes, Largest(*entries));
  }
  return ReadPackEntries(*std::move(entries), dir, max_bytes);
}

absl::Status CheckSnapshot(const v1::SourceSnapshot& snapshot, int64_t max_bytes) {
  if (snapshot.files_size() > kMaxSnapshotFiles) {
    return absl::InvalidArgumentError(
        absl::StrCat("source_directory: the snapshot holds ", snapshot.files_size(),
                     " files, over the limit of ", kMaxSnapshotFiles,
                     " (docs/limits.md); move data into inputs or side_inputs"));
  }
  int64_t bytes = 0;
  for (const v1::SnapshotFile& file : snapshot.files()) {
    bytes += static_cast<int64_t>(file.content().size() + file.path().size());
  }
  if (max_bytes >= 0 && bytes > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "source_directory: the snapshot is ", FormatBytes(bytes), ", over the master's limit of ",
        FormatBytes(max_bytes), " (docs/limits.md); move data into inputs or side_inputs"));
  }
  return CheckSnapshotPaths(snapshot);
}

absl::Status UnpackSnapshot(const v1::SourceSnapshot& snapshot, const std::string& dest_dir) {
  std::string dest_text = dest_dir;
  while (dest_text.size() > 1 && dest_text.back() == '/') dest_text.pop_back();
  if (dest_text.empty()) {
    return absl::InvalidArgumentError("snapshot: the destination folder is empty");
  }
  std::error_code error;
  const fs::path dest = fs::absolute(fs::path(dest_text), error).lexically_normal();
  if (error) return FilesystemError(error, absl::StrCat("cannot resolve ", dest_dir));
  if (!dest.has_filename() || dest.filename() == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot: cannot unpack into '", dest_dir, "'; give a folder to replace"));
  }
  if (absl::Status status = CheckSnapshotPaths(snapshot); !status.ok()) return status;

  const fs::path parent = dest.parent_path();
  fs::create_directories(parent, error);
  if (error) return FilesystemError(error, absl::StrCat("cannot create ", parent.string()));
  const fs::path fresh =
      parent / absl::StrCat(".", dest.filename().string(), ".tmp-", UniqueSuffix());
  fs::create_directory(fresh, error);
  if (error) return FilesystemError(error, absl::StrCat("cannot create ", fresh.string()));

  const auto write_all = [&]() -> absl::Status {
    for (const v1::SnapshotFile& file : snapshot.files()) {
      const fs::path target = fresh / file.path();
      std::error_code mkdir_error;
      fs::create_directories(target.parent_path(), mkdir_error);
      if (mkdir_error) {
        return FilesystemError(mkdir_error,
                               absl::StrCat("cannot create ", target.parent_path().string()));
      }
      uint32_t mode = file.mode() & kPermissionMask;
      if (mode == 0) mode = kDefaultMode;
      mode |= S_IRUSR;  // The agent must be able to read what it unpacked.
      if (absl::Status status = WriteFile(target, file.content(), mode); !status.ok()) {
        return status;
      }
    }
    return MoveIntoPlace(fresh, dest);
  };
  absl::Status status = write_all();
  if (!status.ok()) {
    std::error_code ignored;
    fs::remove_all(fresh, ignored);
  }
  return status;
}

}  // namespace prs

#ifndef PRS_MASTER_OUTPUT_FILE_H_
#define PRS_MASTER_OUTPUT_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prs::master {

// The extended attribute that marks a file prs made, its value the job id.
inline constexpr char kOutputMarkAttribute[] = "user.prs.output";
// Where a filesystem keeps no user extended attributes, the outputs prs made
// in a folder are listed in this file of the folder instead, one
// "<inode>\t<name>" line each.
inline constexpr char kUnmarkedOutputsFile[] = ".prs-outputs";

// The system folder `path` (absolute, without links) is or is in ("/etc",
// "/usr", ..., or "/" itself), or "": no job's output goes there.
std::string SystemFolderOf(const std::filesystem::path& path);

// Whether a file, by its identity ("device:inode"), is an output some job of
// this master made (Store::IsJobOutput).
using KnownOutput = std::function<bool(const std::string& id)>;

// The append_row output file of one job, as the master writes it.
//
// A job makes its file when its first rows come (Start), so a job that never
// starts leaves an earlier file where it is; an earlier non-empty file is
// renamed aside, never overwritten, and only when prs made it: a file prs
// made carries the attribute kOutputMarkAttribute, or is listed in its
// folder's kUnmarkedOutputsFile, or is one the store recorded (on a
// filesystem without user extended attributes). Any other file at the path
// is refused, never moved or replaced. After a restart or a
// resume the file is
// reopened at its committed length (Reopen), which is refused when the file
// is gone or shorter: rows would be lost, and the file is never padded.
// Before each write the open file is checked to still be the one at the path
// (CheckSame): a file or folder deleted, moved or replaced under a running
// job is noticed at its next commit, not discovered by the user at the end.
//
// Not thread-safe: the job manager calls it under its commit mutex.
class OutputFile {
 public:
  // `forbidden_root`: a folder the output must never be in, however the path
  // leads there (the master's state folder); empty for none.
  // `known`: outputs this master's jobs made; null for none.
  explicit OutputFile(std::string path, std::string forbidden_root = "",
                      KnownOutput known = nullptr)
      : path_(std::move(path)),
        forbidden_root_(std::move(forbidden_root)),
        known_(std::move(known)) {}
  ~OutputFile() { Close(); }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Creates the file empty, marked as prs's. A file prs made at the path is
  // first renamed to "<path>.<UTC time>.before-<job_id>"; the return
  // value says so (empty when nothing was moved). FAILED_PRECONDITION when a
  // file prs did not make, or something other than a regular file, is at the
  // path; PERMISSION_DENIED when the file cannot be made.
  absl::StatusOr<std::string> Start(const std::string& job_id, absl::Time now);

  // At submit: what Start would refuse at `path` now (a link, not a regular
  // file, a file prs did not make), so that the user hears it at once.
  static absl::Status CheckPath(const std::string& path, const KnownOutput& known);

  // Opens the file this job made, cut to `length` committed bytes (dropping
  // rows whose commit did not happen). `id` is the file's identity as id()
  // gave it when the job made the file (empty: not checked).
  // FAILED_PRECONDITION naming the loss when the file is gone, is another
  // file (another job or program replaced it; the job's rows may be in a
  // file moved aside), or holds fewer bytes than were committed. NOT_FOUND
  // when there is no file and nothing was committed: the job makes it anew
  // (Start). The file at the path is never cut unless it is the job's.
  absl::Status Reopen(int64_t length, const std::string& id);

  // OK while the open file is the one at the path and holds exactly `length`
  // bytes, the committed length. FAILED_PRECONDITION when it was deleted (or
  // its folder), moved, replaced, or written to by something else.
  absl::Status CheckSame(int64_t length) const;

  // The open file's identity, "device:inode".
  std::string id() const;

  // Appends `data` at `length`, the committed length; DATA_LOSS on a write
  // error, with the file cut back to `length`.
  absl::Status Append(int64_t length, const std::string& data);
  // The appended bytes are on the disk (fdatasync), for --durability machine.
  absl::Status Sync();
  // The file's folder entry is on the disk (fsync of the folder): a file made
  // or moved aside survives a crash of the machine.
  absl::Status SyncFolder() const;

  // Cuts the file back to `length` (a commit that did not happen).
  absl::Status Truncate(int64_t length);

  void Close();
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  absl::Status Remember();  // the open file's identity, for CheckSame
  // The output's folder, opened and checked against forbidden_root_.
  absl::StatusOr<int> OpenFolder() const;

  std::string path_;
  std::string forbidden_root_;
  KnownOutput known_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace prs::master

#endif  // PRS_MASTER_OUTPUT_FILE_H_

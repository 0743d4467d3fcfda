// Source snapshots: the client packs source_directory at submit time, the
// master stores the snapshot with the job, and every agent unpacks it, so the
// job runs the code as it was when it was submitted and agents need no shared
// filesystem.
//
// Both functions are thread-safe as long as callers do not pack or unpack
// the same directories concurrently.
#ifndef PRS_COMMON_SNAPSHOT_H_
#define PRS_COMMON_SNAPSHOT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "prs/v1/job.pb.h"

namespace prs {

// Packs every regular file under `dir`, recursively, sorted by path, with
// paths relative to `dir` and '/'-separated, and the permission bits (0777
// mask) of each file. Folders named `__pycache__` and `.git` entries are
// skipped. A symlink to a file is packed as a regular file holding the
// target's contents; symlinks to folders are not followed and dangling
// symlinks, sockets and other special files are skipped. Empty folders are
// not recorded.
//
// `max_bytes` bounds the sum of file sizes (a negative value means no
// limit). Keep it well below the gRPC message limit of the channel the
// snapshot travels over.
//
// Returns NOT_FOUND if `dir` does not exist, INVALID_ARGUMENT if it is not a
// folder, RESOURCE_EXHAUSTED when the files add up to more than max_bytes
// (naming the total, the limit and the largest file, and suggesting to move
// data into inputs or side_inputs), and the errno-derived code when a file
// cannot be read.
absl::StatusOr<v1::SourceSnapshot> PackDirectory(const std::string& dir, int64_t max_bytes);

// Writes `snapshot` into `dest_dir`, replacing whatever was there. The files
// are written into a fresh sibling folder which is then renamed onto
// `dest_dir` (atomically exchanged when the filesystem supports it), so a
// reader never sees a half-written snapshot. Missing parent folders are
// created. File modes are applied as recorded, always readable by the owner
// (0 is taken as 0644).
//
// Returns INVALID_ARGUMENT, before writing anything, when `dest_dir` is empty
// or a file path is empty, absolute, has an empty, "." or ".." component,
// appears twice, or is both a file and a folder; otherwise the errno-derived
// code of the first filesystem error (the temporary folder is removed).
absl::Status UnpackSnapshot(const v1::SourceSnapshot& snapshot, const std::string& dest_dir);

// The most files a snapshot may hold (docs/limits.md): a source folder is code,
// not data.
inline constexpr int kMaxSnapshotFiles = 10'000;

// The checks UnpackSnapshot makes, made by the master at submit so that a bad
// snapshot is refused before anything is queued: the paths (as above), at
// most kMaxSnapshotFiles files, and at most `max_bytes` of contents (a
// negative value: no limit). INVALID_ARGUMENT naming the problem.
absl::Status CheckSnapshot(const v1::SourceSnapshot& snapshot, int64_t max_bytes);

}  // namespace prs

#endif  // PRS_COMMON_SNAPSHOT_H_

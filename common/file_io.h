#ifndef PRS_COMMON_FILE_IO_H_
#define PRS_COMMON_FILE_IO_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The one place that writes files: whole writes, atomic replacement, appends
// that are all or nothing, and CSV fields. Every error names the path.
namespace prs {

// mkdir -p. PERMISSION_DENIED naming the folder.
absl::Status MakeDirs(const std::string& path);

// Writes all of `text` to `fd` (retrying short writes and EINTR).
absl::Status WriteAll(int fd, absl::string_view text, const std::string& path);

// A name for a temporary file next to `path` that no other thread or process
// uses, "PATH.PID.N.tmp".
std::string UniqueTempName(const std::string& path);

// Creates `path` holding `contents`; ALREADY_EXISTS when it exists.
absl::Status CreateExclusive(const std::string& path, absl::string_view contents);

// Replaces `path` with `contents` atomically: a unique temporary file, then
// rename, so a reader sees the old file or the new one, never a part, and two
// writers never write through one temporary file.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents);

// Appends to `path`, creating it and its folder. All or nothing: on an error
// (UNAVAILABLE, e.g. no space or no file descriptor left) the file is cut back
// to its length before the call, so the caller can try again later.
absl::Status AppendToFile(const std::string& path, absl::string_view contents);

// Appends `rows` to the CSV at `path`, creating it with the line `header`
// first. One O_APPEND write, so rows of concurrent writers do not interleave;
// no reader ever sees the file without its header.
absl::Status AppendCsv(const std::string& path, absl::string_view header, absl::string_view rows);

// The whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// RFC 4180: a field holding a comma, quote or line break is quoted.
std::string CsvField(absl::string_view value);
// The fields as one CSV line, with its line break.
std::string CsvRow(const std::vector<std::string>& fields);

}  // namespace prs

#endif  // PRS_COMMON_FILE_IO_H_

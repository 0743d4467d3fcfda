#ifndef PRS_COMMON_PATHS_H_
#define PRS_COMMON_PATHS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prs {

// Folder of the running executable.
std::string ExecutableDir();

// Folder that holds the `prs` Python package: `<prefix>/share/prs/python`
// next to an installed binary, else the source tree the binary was built from.
// NOT_FOUND when neither exists.
absl::StatusOr<std::string> FindPythonRuntimeDir();

// The interpreter workers use when a job names none: /usr/bin/python3, which
// owns Debian's python3-* packages that the setup script installs; else the
// first python3 on PATH.
std::string DefaultWorkerPython();

// mkdir -p.
absl::Status MakeDirs(const std::string& path);

// Writes `contents` to `path` atomically (temp file + rename).
absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents);

// Appends to `path`, creating it and its folder. All or nothing: on an error
// (UNAVAILABLE, e.g. no space or no file descriptor left) the file is cut back
// to its length before the call, so the caller can try again later.
absl::Status AppendToFile(const std::string& path, absl::string_view contents);

// The whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Host name of this machine.
std::string HostName();

// First non-loopback IPv4 address of this machine, else 127.0.0.1.
std::string PrimaryIp();

}  // namespace prs

#endif  // PRS_COMMON_PATHS_H_

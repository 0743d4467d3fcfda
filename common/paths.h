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

// Host name of this machine.
std::string HostName();

// First non-loopback IPv4 address of this machine, else 127.0.0.1.
std::string PrimaryIp();

}  // namespace prs

#endif  // PRS_COMMON_PATHS_H_

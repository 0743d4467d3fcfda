// The log tree's path checks (master/log_store.h) on any path and node id.
// The input is "NODE\nPATH" (PATH may hold more line breaks); without a line
// break it is the path, and the node is "node-1".
//
// Checks, for each function, exactly what its comment promises of a path it
// accepts: relative, no NUL, no empty, "." or ".." component (so joined to a
// log folder it stays inside it); a shipped path is under user/, sys/node/ or
// perf/; a node's path is under sys/node/NODE/, user/{stdout,stderr,error,
// entry_script_log}/NODE/ or perf/NODE/. What it refuses gets the promised
// code: INVALID_ARGUMENT, or PERMISSION_DENIED for a good path of another
// node. Each check is at least as strict as the one it builds on.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_util.h"
#include "master/log_store.h"

namespace {

// Relative, no NUL, and no empty, "." or ".." component.
bool InsideTree(absl::string_view path) {
  if (path.empty() || path.front() == '/' || absl::StrContains(path, '\0')) return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  // What LogStore does with it: log_dir / path.
  const std::filesystem::path log_dir = "/state/jobs/j/logs";
  const std::string joined = (log_dir / std::string(path)).lexically_normal().string();
  return absl::StartsWith(joined, "/state/jobs/j/logs/") &&
         joined.size() > log_dir.native().size() + 1;
}

bool StartsWithAny(absl::string_view path, std::initializer_list<std::string> prefixes) {
  for (const std::string& prefix : prefixes) {
    if (absl::StartsWith(path, prefix)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::string_view node = "node-1";
  absl::string_view path = input;
  if (const size_t newline = input.find('\n'); newline != absl::string_view::npos) {
    node = input.substr(0, newline);
    path = input.substr(newline + 1);
  }

  const absl::Status read = prs::master::ValidateReadLogPath(path);
  if (read.ok()) {
    PRS_FUZZ_CHECK(InsideTree(path));
  } else {
    PRS_FUZZ_CHECK(read.code() == absl::StatusCode::kInvalidArgument);
    PRS_FUZZ_CHECK(!read.message().empty());
  }

  const absl::Status shipped = prs::master::ValidateShippedLogPath(path);
  if (shipped.ok()) {
    PRS_FUZZ_CHECK(read.ok());
    PRS_FUZZ_CHECK(InsideTree(path));
    PRS_FUZZ_CHECK(StartsWithAny(path, {"user/", "sys/node/", "perf/"}));
  } else {
    PRS_FUZZ_CHECK(shipped.code() == absl::StatusCode::kInvalidArgument);
  }

  const absl::Status own = prs::master::ValidateNodeLogPath(path, node);
  if (own.ok()) {
    PRS_FUZZ_CHECK(shipped.ok());
    const std::string n(node);
    PRS_FUZZ_CHECK(StartsWithAny(
        path, {absl::StrCat("sys/node/", n, "/"), absl::StrCat("user/stdout/", n, "/"),
               absl::StrCat("user/stderr/", n, "/"), absl::StrCat("user/error/", n, "/"),
               absl::StrCat("user/entry_script_log/", n, "/"), absl::StrCat("perf/", n, "/")}));
  } else if (shipped.ok()) {
    PRS_FUZZ_CHECK(own.code() == absl::StatusCode::kPermissionDenied);
  } else {
    PRS_FUZZ_CHECK(own == shipped);
  }
  return 0;
}

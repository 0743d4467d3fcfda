// The job file parser (common/job_config.h ParseJobYaml) with `--set`
// overrides, on any text. The input is a job file; leading lines of the form
// "--set KEY=VALUE" are taken off it and applied as overrides, in order, as
// `prs submit --set` does:
//
//   --set node_count=4
//   --set environment.variables.A=1
//   name: predict-digits
//   ...
//
// Checks: errors are INVALID_ARGUMENT with a message; a spec that parses has
// passed ValidateJobSpec(check_files=false), and its paths (source_directory,
// output, each input's path and list_file, each side input's path) are
// absolute and lexically normal without a trailing '/'. Relative paths are
// resolved against a scratch folder; nothing is written.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/job_config.h"
#include "fuzz/fuzz_util.h"
#include "prs/v1/job.pb.h"
#include "tests/unit/test_util.h"

namespace {

constexpr absl::string_view kSet = "--set ";
constexpr int kMaxOverrides = 16;

// Absolute, lexically normal, no trailing '/' (but "/" itself).
bool Canonical(const std::string& path) {
  if (path.empty() || path.front() != '/') return false;
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal == path;
}

void CheckPaths(const prs::v1::JobSpec& spec) {
  PRS_FUZZ_CHECK(Canonical(spec.source_directory()));
  PRS_FUZZ_CHECK(spec.output().empty() || Canonical(spec.output()));
  for (const prs::v1::Input& input : spec.inputs()) {
    PRS_FUZZ_CHECK(input.path().empty() || Canonical(input.path()));
    PRS_FUZZ_CHECK(input.list_file().empty() || Canonical(input.list_file()));
  }
  for (const prs::v1::SideInput& side : spec.side_inputs()) {
    PRS_FUZZ_CHECK(Canonical(side.path()));
  }
  const std::string& python = spec.environment().python();
  PRS_FUZZ_CHECK(!absl::StrContains(python, '/') || Canonical(python));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const prs::testing::TempDir base;

  absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  while (overrides.size() < kMaxOverrides && absl::StartsWith(text, kSet)) {
    const size_t end = text.find('\n');
    overrides.emplace_back(
        text.substr(kSet.size(), end == text.npos ? text.npos : end - kSet.size()));
    text = end == text.npos ? absl::string_view() : text.substr(end + 1);
  }

  const absl::StatusOr<prs::v1::JobSpec> spec =
      prs::ParseJobYaml(std::string(text), base.path().string(), overrides);
  if (!spec.ok()) {
    PRS_FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument);
    PRS_FUZZ_CHECK(!spec.status().message().empty());
    return 0;
  }
  PRS_FUZZ_CHECK(prs::ValidateJobSpec(*spec, /*check_files=*/false).ok());
  CheckPaths(*spec);
  return 0;
}

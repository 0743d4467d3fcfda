// Source snapshots (common/snapshot.h) as an agent gets them: any bytes that
// parse as a prs.v1.SourceSnapshot.
//
// Checks: a snapshot CheckSnapshot passes unpacks into a fresh folder or
// fails leaving nothing behind; what it writes is inside the destination
// folder and nowhere else (no symlinks, nothing beside it), exactly the
// snapshot's files with their contents, readable by the owner. CheckSnapshot
// and UnpackSnapshot agree on the paths: what the first refuses, the second
// refuses before writing anything.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "common/snapshot.h"
#include "fuzz/fuzz_util.h"
#include "prs/v1/job.pb.h"
#include "tests/unit/test_util.h"

namespace {

namespace fs = std::filesystem;

// Inputs past this are skipped: unpacking writes every byte to disk.
constexpr size_t kMaxInputBytes = 1 << 20;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// True when `path` is `dir` or inside it, lexically.
bool Inside(const fs::path& path, const fs::path& dir) {
  const fs::path relative = path.lexically_normal().lexically_relative(dir);
  return !relative.empty() && *relative.begin() != "..";
}

bool IsEmptyDir(const fs::path& dir) {
  std::error_code error;
  return fs::is_empty(dir, error) && !error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  prs::v1::SourceSnapshot snapshot;
  if (!snapshot.ParseFromArray(data, static_cast<int>(size))) return 0;

  static const prs::testing::TempDir scratch;
  const fs::path& root = scratch.path();
  const fs::path dest = root / "dest";
  PRS_FUZZ_CHECK(IsEmptyDir(root));

  const absl::Status checked = prs::CheckSnapshot(snapshot, kMaxInputBytes);
  if (!checked.ok()) {
    PRS_FUZZ_CHECK(checked.code() == absl::StatusCode::kInvalidArgument);
    // The path checks are UnpackSnapshot's too (not the size and count ones).
    if (snapshot.files_size() > prs::kMaxSnapshotFiles || prs::CheckSnapshot(snapshot, -1).ok()) {
      return 0;
    }
    const absl::Status unpacked = prs::UnpackSnapshot(snapshot, dest.string());
    PRS_FUZZ_CHECK(!unpacked.ok());
    PRS_FUZZ_CHECK(IsEmptyDir(root));
    return 0;
  }

  const absl::Status unpacked = prs::UnpackSnapshot(snapshot, dest.string());
  // A failed unpack (a name too long for the filesystem, say) leaves nothing.
  if (!unpacked.ok()) {
    PRS_FUZZ_CHECK(IsEmptyDir(root));
    return 0;
  }
  std::map<std::string, std::string> expected;
  for (const prs::v1::SnapshotFile& file : snapshot.files()) expected[file.path()] = file.content();
  size_t files = 0;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    const fs::path& path = it->path();
    PRS_FUZZ_CHECK(Inside(path, dest));
    std::error_code status_error;
    const fs::file_status status = it->symlink_status(status_error);
    PRS_FUZZ_CHECK(!status_error);
    PRS_FUZZ_CHECK(fs::is_directory(status) || fs::is_regular_file(status));
    if (!fs::is_regular_file(status)) continue;
    ++files;
    const auto want = expected.find(path.lexically_relative(dest).generic_string());
    PRS_FUZZ_CHECK(want != expected.end());
    PRS_FUZZ_CHECK((static_cast<unsigned>(status.permissions()) & S_IRUSR) != 0);
    PRS_FUZZ_CHECK(ReadAll(path) == want->second);
  }
  PRS_FUZZ_CHECK(!error);
  PRS_FUZZ_CHECK(files == expected.size());

  fs::remove_all(dest, error);
  PRS_FUZZ_CHECK(!error);
  PRS_FUZZ_CHECK(IsEmptyDir(root));
  return 0;
}

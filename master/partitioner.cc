#include "master/partitioner.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

// Collects items into mini-batches and hands full ones to `emit`.
class Batcher {
 public:
  Batcher(int64_t size, const std::function<bool(NewTask)>& emit) : size_(size), emit_(emit) {}
  bool Add(std::string item) {
    current_.items.push_back(std::move(item));
    ++count_;
    if (static_cast<int64_t>(current_.items.size()) >= size_) return Flush();
    return true;
  }
  bool Flush() {
    if (current_.items.empty()) return true;
    current_.task_id = next_id_++;
    bool go_on = emit_(std::move(current_));
    current_ = NewTask();
    return go_on;
  }
  int64_t count() const { return count_; }

 private:
  int64_t size_;
  const std::function<bool(NewTask)>& emit_;
  NewTask current_;
  int64_t next_id_ = 0;
  int64_t count_ = 0;
};

enum class Walk { kGoOn, kStopped };

absl::StatusOr<Walk> WalkFolder(const fs::path& dir, Batcher& batcher,
                                const std::atomic<bool>& stop) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(*it);
  }
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot list input folder ", dir.string(), ": ", ec.message()));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  for (const auto& e : entries) {
    if (stop.load(std::memory_order_relaxed)) return Walk::kStopped;
    std::error_code sec;
    if (e.is_directory(sec)) {
      auto r = WalkFolder(e.path(), batcher, stop);
      if (!r.ok() || *r == Walk::kStopped) return r;
    } else if (e.is_regular_file(sec)) {
      if (!batcher.Add(e.path().string())) return Walk::kStopped;
    }
  }
  return Walk::kGoOn;
}

absl::StatusOr<Walk> ListGlob(const std::string& pattern, Batcher& batcher,
                              const std::atomic<bool>& stop) {
  glob_t g{};
  int rc = ::glob(pattern.c_str(), GLOB_NOSORT | GLOB_MARK, nullptr, &g);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    ::globfree(&g);
    return absl::PermissionDeniedError(absl::StrCat("cannot expand input glob ", pattern));
  }
  std::vector<std::string> paths;
  for (size_t i = 0; i < g.gl_pathc; ++i) {
    std::string p = g.gl_pathv[i];
    if (!p.empty() && p.back() != '/') paths.push_back(std::move(p));  // GLOB_MARK: skip folders
  }
  ::globfree(&g);
  std::sort(paths.begin(), paths.end());
  for (auto& p : paths) {
    if (stop.load(std::memory_order_relaxed)) return Walk::kStopped;
    if (!batcher.Add(std::move(p))) return Walk::kStopped;
  }
  return Walk::kGoOn;
}

absl::StatusOr<Walk> ReadListFile(const fs::path& list, Batcher& batcher,
                                  const std::atomic<bool>& stop) {
  std::ifstream in(list);
  if (!in)
    return absl::PermissionDeniedError(absl::StrCat("cannot read input list ", list.string()));
  const fs::path base = list.parent_path();
  std::string line;
  while (std::getline(in, line)) {
    if (stop.load(std::memory_order_relaxed)) return Walk::kStopped;
    absl::string_view v = absl::StripAsciiWhitespace(line);
    if (v.empty() || v.front() == '#') continue;
    fs::path p(std::string{v});
    if (p.is_relative()) p = base / p;
    if (!batcher.Add(p.lexically_normal().string())) return Walk::kStopped;
  }
  return Walk::kGoOn;
}

}  // namespace

absl::Status PartitionFileInputs(const std::vector<v1::Input>& inputs, int64_t mini_batch_size,
                                 const std::function<bool(NewTask)>& emit,
                                 const std::atomic<bool>& stop) {
  Batcher batcher(std::max<int64_t>(1, mini_batch_size), emit);
  for (const auto& input : inputs) {
    const std::string& path = input.path();
    const int64_t before = batcher.count();
    absl::StatusOr<Walk> walk;
    std::error_code ec;
    if (path.find_first_of("*?[") != std::string::npos) {
      walk = ListGlob(path, batcher, stop);
    } else if (fs::is_directory(path, ec)) {
      walk = WalkFolder(path, batcher, stop);
    } else if (fs::is_regular_file(path, ec)) {
      walk = ReadListFile(path, batcher, stop);
    } else {
      return absl::NotFoundError(absl::StrCat("input '", input.name(), "': ", path,
                                              " does not exist; give a folder, a glob, or a "
                                              "text file that lists paths"));
    }
    if (!walk.ok()) return walk.status();
    if (*walk == Walk::kStopped) return absl::OkStatus();
    if (!batcher.Flush()) return absl::OkStatus();
    if (batcher.count() == before) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", input.name(), "': ", path, " holds no files"));
    }
  }
  return absl::OkStatus();
}

}  // namespace prs::master

#include "master/partitioner.h"

#include <glob.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/json.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

// Receives the listed files one by one; false stops the listing.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::StatusOr<bool> Add(std::string path) = 0;
  // The end of one input.
  virtual bool Flush() { return true; }
  int64_t count() const { return count_; }

 protected:
  int64_t count_ = 0;
};

// Collects files into mini-batches and hands full ones to `emit`.
class Batcher : public Sink {
 public:
  Batcher(int64_t size, const std::function<bool(NewTask)>& emit) : size_(size), emit_(emit) {}
  absl::StatusOr<bool> Add(std::string item) override {
    current_.items.push_back(std::move(item));
    ++count_;
    if (static_cast<int64_t>(current_.items.size()) >= size_) return Flush();
    return true;
  }
  bool Flush() override {
    if (current_.items.empty()) return true;
    current_.task_id = next_id_++;
    current_.item_count = static_cast<int64_t>(current_.items.size());
    bool go_on = emit_(std::move(current_));
    current_ = NewTask();
    return go_on;
  }

 private:
  int64_t size_;
  const std::function<bool(NewTask)>& emit_;
  NewTask current_;
  int64_t next_id_ = 0;
};

// Tabular files: a mini-batch per file, or a plan task that a worker turns
// into record-aligned mini-batches (docs/tabular.md).
class TabularSink : public Sink {
 public:
  TabularSink(const v1::JobSpec& spec, const std::function<bool(NewTask)>& emit)
      : spec_(spec), emit_(emit) {
    if (!spec.partition_keys().empty()) {
      keys_json_ = "[";
      for (int i = 0; i < spec.partition_keys_size(); ++i) {
        if (i > 0) keys_json_ += ",";
        absl::StrAppend(&keys_json_, "\"", JsonEscape(spec.partition_keys(i)), "\"");
      }
      keys_json_ += "]";
    }
  }
  void SetInput(const v1::Input* input) { input_ = input; }

  absl::StatusOr<bool> Add(std::string path) override {
    std::string format = input_->format();
    if (format.empty()) format = TabularFormatOf(path);
    if (format.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input_->name(), "': cannot tell the format of ", path,
          " from its name; tabular files must end in .csv, .tsv, .jsonl (or .json, .ndjson), "
          "optionally followed by .gz; or set format: csv|tsv|jsonl on the input"));
    }
    // The file's version goes with every descriptor made from it, so a worker
    // refuses to read a file that changed since (docs/tabular.md). A file that
    // cannot be stat'ed (gone, a dangling link) is one mini-batch without a
    // version: its worker fails it with the reason, counted like any failure.
    int64_t size = -1;
    if (std::optional<std::string> version = FileVersion(path)) {
      absl::StrAppend(&format, ":", *version);
      size = std::stoll(*version);  // "SIZE:MTIME_NS"
    }
    const bool gz = absl::EndsWith(path, ".gz");
    NewTask task;
    task.task_id = next_id_++;
    if (!keys_json_.empty()) {
      task.kind = TaskKind::kPlan;
      task.item_count = 0;
      task.items.push_back(absl::StrCat("plan\tkeys\t", format, "\t", keys_json_, "\t", path));
    } else {
      const bool whole =
          gz || size < 0 ||
          (spec_.mini_batch_unit() == v1::MINI_BATCH_BYTES && size <= spec_.mini_batch_size());
      if (whole) {
        task.items.push_back(absl::StrCat("range\t", format, "\t0\t-1\t", path));
      } else {
        task.kind = TaskKind::kPlan;
        task.item_count = 0;
        task.items.push_back(absl::StrCat(
            "plan\t", spec_.mini_batch_unit() == v1::MINI_BATCH_ROWS ? "rows" : "bytes", "\t",
            format, "\t", spec_.mini_batch_size(), "\t", path));
      }
    }
    ++count_;
    return emit_(std::move(task));
  }

 private:
  const v1::JobSpec& spec_;
  const std::function<bool(NewTask)>& emit_;
  const v1::Input* input_ = nullptr;
  std::string keys_json_;
  int64_t next_id_ = 0;
};

enum class Walk { kGoOn, kStopped };

absl::StatusOr<Walk> WalkFolder(const fs::path& dir, Sink& batcher, const std::atomic<bool>& stop) {
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
      auto go_on = batcher.Add(e.path().string());
      if (!go_on.ok()) return go_on.status();
      if (!*go_on) return Walk::kStopped;
    }
  }
  return Walk::kGoOn;
}

absl::StatusOr<Walk> ListGlob(const std::string& pattern, Sink& batcher,
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
    auto go_on = batcher.Add(std::move(p));
    if (!go_on.ok()) return go_on.status();
    if (!*go_on) return Walk::kStopped;
  }
  return Walk::kGoOn;
}

absl::StatusOr<Walk> ReadListFile(const fs::path& list, Sink& batcher,
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
    auto go_on = batcher.Add(p.lexically_normal().string());
    if (!go_on.ok()) return go_on.status();
    if (!*go_on) return Walk::kStopped;
  }
  return Walk::kGoOn;
}

absl::Status PartitionInputs(const std::vector<v1::Input>& inputs, Sink& batcher,
                             TabularSink* tabular, const std::atomic<bool>& stop) {
  for (const auto& input : inputs) {
    if (tabular != nullptr) tabular->SetInput(&input);
    const std::string& path = input.path();
    const int64_t before = batcher.count();
    absl::StatusOr<Walk> walk;
    std::error_code ec;
    if (path.find_first_of("*?[") != std::string::npos) {
      walk = ListGlob(path, batcher, stop);
    } else if (fs::is_directory(path, ec)) {
      walk = WalkFolder(path, batcher, stop);
    } else if (fs::is_regular_file(path, ec) && tabular != nullptr &&
               (!input.format().empty() || !TabularFormatOf(path).empty())) {
      auto go_on = batcher.Add(path);  // one data file
      if (!go_on.ok()) return go_on.status();
      walk = *go_on ? Walk::kGoOn : Walk::kStopped;
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

}  // namespace

absl::Status PartitionFileInputs(const std::vector<v1::Input>& inputs, int64_t mini_batch_size,
                                 const std::function<bool(NewTask)>& emit,
                                 const std::atomic<bool>& stop) {
  Batcher batcher(std::max<int64_t>(1, mini_batch_size), emit);
  return PartitionInputs(inputs, batcher, nullptr, stop);
}

absl::Status PartitionTabularInputs(const v1::JobSpec& spec,
                                    const std::function<bool(NewTask)>& emit,
                                    const std::atomic<bool>& stop) {
  const std::vector<v1::Input> inputs(spec.inputs().begin(), spec.inputs().end());
  TabularSink sink(spec, emit);
  return PartitionInputs(inputs, sink, &sink, stop);
}

std::optional<std::string> FileVersion(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return absl::StrCat(st.st_size, ":",
                      int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
}

std::string TabularFormatOf(absl::string_view path) {
  absl::string_view name = path;
  absl::ConsumeSuffix(&name, ".gz");
  const auto ends = [&](absl::string_view ext) { return absl::EndsWithIgnoreCase(name, ext); };
  if (ends(".csv")) return "csv";
  if (ends(".tsv") || ends(".tab")) return "tsv";
  if (ends(".jsonl") || ends(".ndjson") || ends(".json")) return "jsonl";
  return "";
}

}  // namespace prs::master

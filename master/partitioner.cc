#include "master/partitioner.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "common/text.h"

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
    const std::optional<TabularStamp> stamp = FileStamp(path);
    const int64_t size = stamp ? stamp->size : -1;
    const bool gz = absl::EndsWith(path, ".gz");
    NewTask task;
    task.task_id = next_id_++;
    if (!keys_json_.empty()) {
      task.kind = TaskKind::kPlan;
      task.item_count = 0;
      PlanDescriptor plan;
      plan.unit = "keys";
      plan.format = format;
      plan.stamp = stamp;
      plan.keys_json = keys_json_;
      plan.path = path;
      task.items.push_back(EncodeDescriptor(plan));
    } else {
      const bool whole =
          gz || size < 0 ||
          (spec_.mini_batch_unit() == v1::MINI_BATCH_BYTES && size <= spec_.mini_batch_size());
      if (whole) {
        task.items.push_back(
            EncodeDescriptor(RangeDescriptor{format, stamp, {0, -1}, {-1, -1}, path}));
      } else {
        task.kind = TaskKind::kPlan;
        task.item_count = 0;
        PlanDescriptor plan;
        plan.unit = spec_.mini_batch_unit() == v1::MINI_BATCH_ROWS ? "rows" : "bytes";
        plan.format = format;
        plan.stamp = stamp;
        plan.size = spec_.mini_batch_size();
        plan.path = path;
        task.items.push_back(EncodeDescriptor(plan));
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

bool IsGlob(absl::string_view path) { return path.find_first_of("*?[") != absl::string_view::npos; }

// The path on one line of a list file: relative paths are relative to the
// list's folder; blank lines and lines starting with '#' name nothing.
std::optional<std::string> ListedPath(const fs::path& base, absl::string_view line) {
  absl::string_view v = absl::StripAsciiWhitespace(line);
  if (v.empty() || v.front() == '#') return std::nullopt;
  fs::path p(std::string{v});
  if (p.is_relative()) p = base / p;
  return p.lexically_normal().string();
}

// A list_file as the master reads it, with its own rights: only a regular
// file that everyone may read. A list of inputs is no secret; a key or a
// tokens file is, and must never become the mini-batches (or the messages) of
// a job. Never a FIFO or a device, which could block a thread or never end;
// the checks are made on the file as opened, so a link swapped after them
// changes nothing. Lines are at most kMaxListLine bytes.
class ListFileReader {
 public:
  static constexpr size_t kMaxListLine = 4096;

  static absl::StatusOr<std::unique_ptr<ListFileReader>> Open(const std::string& list,
                                                              const std::string& where) {
    const int fd = ::open(list.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": list_file ", Printable(list),
                       " cannot be read on the master: ", std::strerror(errno)));
    }
    struct stat st {};
    std::string why;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      why = "is not a regular file";
    } else if ((st.st_mode & S_IROTH) == 0) {
      why = absl::StrFormat(
          "is not readable by everyone (mode %04o): the master reads lists with its own rights, "
          "so it reads only lists that anyone may read; chmod o+r it",
          st.st_mode & 07777);
    }
    FILE* file = why.empty() ? ::fdopen(fd, "r") : nullptr;
    if (file == nullptr) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": list_file ", Printable(list), " ",
                       why.empty() ? "cannot be read on the master" : why));
    }
    return std::unique_ptr<ListFileReader>(new ListFileReader(file, list, where));
  }
  ~ListFileReader() { std::fclose(file_); }

  // The next line, without its line break; nullopt at the end. An error for
  // a line longer than kMaxListLine bytes.
  absl::StatusOr<std::optional<std::string>> Next() {
    char buf[kMaxListLine + 2];
    if (std::fgets(buf, sizeof(buf), file_) == nullptr) return std::nullopt;
    ++line_no_;
    std::string line(buf);
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
    } else if (!std::feof(file_)) {
      return absl::InvalidArgumentError(absl::StrCat(where_, ": list_file ", Printable(list_),
                                                     " line ", line_no_, " is longer than ",
                                                     kMaxListLine, " bytes"));
    }
    return line;
  }
  int64_t line_no() const { return line_no_; }

 private:
  ListFileReader(FILE* file, std::string list, std::string where)
      : file_(file), list_(std::move(list)), where_(std::move(where)) {}
  FILE* const file_;
  const std::string list_;
  const std::string where_;
  int64_t line_no_ = 0;
};

// Every path a list file names exists: each missing one is given by its line
// (the first kMaxNamed, then a count), so the list can be fixed in one go;
// with `name_paths`, with the path it names.
absl::Status CheckListFile(const v1::Input& input, const std::string& where,
                           const std::function<bool()>& cancelled, bool name_paths) {
  constexpr int kMaxNamed = 20;
  const std::string& list = input.list_file();
  auto reader = ListFileReader::Open(list, where);
  if (!reader.ok()) return reader.status();
  const fs::path base = fs::path(list).parent_path();
  std::string named;
  int64_t paths = 0, missing = 0;
  for (;;) {
    auto line = (*reader)->Next();
    if (!line.ok()) return line.status();
    if (!line->has_value()) break;
    const int64_t line_no = (*reader)->line_no();
    if (line_no % 4096 == 0 && cancelled()) {
      return absl::CancelledError("the client gave up while the list_file was checked");
    }
    auto path = ListedPath(base, **line);
    if (!path) continue;
    ++paths;
    struct stat st {};
    if (::stat(path->c_str(), &st) == 0) continue;
    if (++missing <= kMaxNamed) {
      absl::StrAppend(&named, "\n  line ", line_no,
                      name_paths ? absl::StrCat(": ", Printable(*path, 500)) : "");
    }
  }
  if (paths == 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": list_file ", Printable(list),
                                                   " lists no paths (blank lines and lines "
                                                   "starting with # are skipped)"));
  }
  if (missing > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", missing, " of the ", paths, " paths that list_file ", Printable(list),
        " names ", missing == 1 ? "does" : "do", " not exist on the master", named,
        missing > kMaxNamed ? absl::StrCat("\n  ... and ", missing - kMaxNamed, " more") : "",
        "\nfix the list (relative paths are relative to its folder) and submit again"));
  }
  return absl::OkStatus();
}

using DirId = std::pair<dev_t, ino_t>;

std::optional<DirId> DirIdOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  return DirId(st.st_dev, st.st_ino);
}

std::string RealPath(const std::string& path) {
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  return ec ? std::string() : real.string();
}

// True when `path` is `dir` or inside it (lexically; both normalized).
bool IsUnder(const std::string& path, const std::string& dir) {
  if (dir.empty()) return false;
  return path == dir ||
         (absl::StartsWith(path, dir) && (dir.back() == '/' || path[dir.size()] == '/'));
}

// Lists one input: a folder walked recursively (each real folder once), a
// glob, a list file, or one file. Files and folders left out are noted.
class Lister {
 public:
  // With `first_only`, folders are read in the order the filesystem gives,
  // for a sink that stops at the first file.
  Lister(const v1::Input& input, Sink& sink, const std::atomic<bool>& stop,
         const ListingHooks& hooks, bool first_only = false)
      : input_(input), sink_(sink), stop_(stop), hooks_(hooks), first_only_(first_only) {
    if (!hooks.exclude_dir.empty()) {
      exclude_ = DirIdOf(hooks.exclude_dir);
      exclude_real_ = RealPath(hooks.exclude_dir);
    }
  }

  absl::StatusOr<Walk> Folder(const std::string& root) {
    root_real_ = RealPath(root);
    if (auto id = DirIdOf(root)) visited_.insert(*id);
    return WalkFolder(root);
  }

  absl::StatusOr<Walk> Glob(const std::string& pattern) {
    glob_t g{};
    int rc = ::glob(pattern.c_str(), GLOB_NOSORT | GLOB_MARK, nullptr, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
      ::globfree(&g);
      return absl::PermissionDeniedError(
          absl::StrCat("cannot expand input glob ", Printable(pattern)));
    }
    std::vector<std::string> paths;
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string p = g.gl_pathv[i];
      if (!p.empty() && p.back() != '/') paths.push_back(std::move(p));  // GLOB_MARK: skip folders
    }
    ::globfree(&g);
    std::sort(paths.begin(), paths.end());
    bool noted_output = false;
    for (auto& p : paths) {
      if (stop_.load(std::memory_order_relaxed)) return Walk::kStopped;
      const std::string normal = fs::path(p).lexically_normal().string();
      if (IsUnder(normal, hooks_.exclude_dir) || IsUnder(normal, exclude_real_)) {
        if (!noted_output) {
          Note(absl::StrCat("left out ", Printable(p),
                            " and any other match in the job's output folder ", hooks_.exclude_dir,
                            ": prs never lists its own output"));
          noted_output = true;
        }
        continue;
      }
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) {
        struct stat link {};
        Note(::lstat(p.c_str(), &link) == 0 && S_ISLNK(link.st_mode)
                 ? absl::StrCat("skipped ", Printable(p), ": a link to ", Target(p),
                                ", which does not exist")
                 : absl::StrCat("skipped ", Printable(p), ": it vanished while it was listed"));
        continue;
      }
      if (!S_ISREG(st.st_mode)) {
        Note(absl::StrCat("skipped ", Printable(p), ": not a regular file"));
        continue;
      }
      auto go_on = sink_.Add(std::move(p));
      if (!go_on.ok()) return go_on.status();
      if (!*go_on) return Walk::kStopped;
    }
    return Walk::kGoOn;
  }

  absl::StatusOr<Walk> ListFile(const std::string& list) {
    auto reader = ListFileReader::Open(list, absl::StrCat("input '", input_.name(), "'"));
    if (!reader.ok()) return reader.status();
    const fs::path base = fs::path(list).parent_path();
    for (;;) {
      auto line = (*reader)->Next();
      if (!line.ok()) return line.status();
      if (!line->has_value()) break;
      if (stop_.load(std::memory_order_relaxed)) return Walk::kStopped;
      auto path = ListedPath(base, **line);
      if (!path) continue;
      auto go_on = sink_.Add(*std::move(path));
      if (!go_on.ok()) return go_on.status();
      if (!*go_on) return Walk::kStopped;
    }
    return Walk::kGoOn;
  }

 private:
  // Reads a folder with readdir: the entry's type comes with its name, so a
  // folder of plain files costs no stat() per file (a million-file folder is
  // listed in a fraction of a second). Sorted by name unless `first_only_`.
  absl::StatusOr<Walk> WalkFolder(const fs::path& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return CannotList(dir, errno);
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    std::string base = dir.string();
    if (base.empty() || base.back() != '/') base.push_back('/');
    std::vector<std::pair<std::string, unsigned char>> entries;
    for (;;) {
      errno = 0;
      const struct dirent* e = ::readdir(d);
      if (e == nullptr) break;
      const absl::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      if (first_only_) {
        // Any file will do: no need to read and sort the whole folder first.
        auto r = Visit(absl::StrCat(base, name), e->d_type);
        if (!r.ok() || *r == Walk::kStopped) return r;
        continue;
      }
      entries.emplace_back(std::string(name), e->d_type);
    }
    if (errno != 0) return CannotList(dir, errno);
    closer.reset();  // one open folder at a time, however deep the walk
    std::sort(entries.begin(), entries.end());
    for (auto& [name, type] : entries) {
      auto r = Visit(base + name, type);
      if (!r.ok() || *r == Walk::kStopped) return r;
    }
    return Walk::kGoOn;
  }

  absl::Status CannotList(const fs::path& dir, int err) {
    return absl::PermissionDeniedError(
        absl::StrCat("input '", input_.name(), "': cannot list folder ", Printable(dir.string()),
                     ": ", std::strerror(err)));
  }

  // One entry of a folder, with its type as readdir gave it: a file goes to
  // the sink, a folder is walked, the rest is noted. A link, or a filesystem
  // that gives no type, is looked at with stat().
  absl::StatusOr<Walk> Visit(std::string path, unsigned char type) {
    if (stop_.load(std::memory_order_relaxed)) return Walk::kStopped;
    if (type == DT_REG) {
      auto go_on = sink_.Add(std::move(path));
      if (!go_on.ok()) return go_on.status();
      return *go_on ? Walk::kGoOn : Walk::kStopped;
    }
    if (type == DT_DIR) return SubFolder(path, /*link=*/false);
    if (type != DT_LNK && type != DT_UNKNOWN) {
      Note(absl::StrCat("skipped ", Printable(path),
                        ": not a regular file or folder (a socket, pipe or device)"));
      return Walk::kGoOn;
    }
    std::error_code sec;
    const fs::directory_entry e(path, sec);
    const bool link = e.is_symlink(sec);
    if (e.is_regular_file(sec)) {  // follows a link
      auto go_on = sink_.Add(std::move(path));
      if (!go_on.ok()) return go_on.status();
      return *go_on ? Walk::kGoOn : Walk::kStopped;
    }
    if (e.is_directory(sec)) return SubFolder(path, link);
    if (link && !e.exists(sec)) {
      Note(absl::StrCat("skipped ", Printable(path), ": a link to ", Target(path),
                        ", which does not exist"));
    } else {
      Note(absl::StrCat("skipped ", Printable(path),
                        ": not a regular file or folder (a socket, pipe or device)"));
    }
    return Walk::kGoOn;
  }

  // A folder inside the input, or a link to one: each real folder is listed
  // once, so a link loop ends; the output folder and the folders above the
  // input are left out.
  absl::StatusOr<Walk> SubFolder(const std::string& path, bool link) {
    const std::optional<DirId> id = DirIdOf(path);
    if (!id) return Walk::kGoOn;  // vanished meanwhile
    if (exclude_ && *id == *exclude_) {
      Note(absl::StrCat("left out ", Printable(path),
                        ": it is the job's output folder, and prs never lists its own output"));
      return Walk::kGoOn;
    }
    if (link) {
      const std::string real = RealPath(path);
      if (!real.empty() && IsUnder(root_real_, real)) {
        Note(absl::StrCat("skipped ", Printable(path), ": a link to ", Printable(real),
                          ", a folder that holds the input itself"));
        return Walk::kGoOn;
      }
    }
    if (!visited_.insert(*id).second) {
      Note(absl::StrCat(
          "skipped ", Printable(path), ": ",
          link ? absl::StrCat("a link to ", Printable(RealPath(path)), ", ") : std::string(),
          "a folder that is listed already"));
      return Walk::kGoOn;
    }
    return WalkFolder(path);
  }

  std::string Target(const std::string& path) {
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    return ec ? std::string("?") : Printable(target.string());
  }

  void Note(std::string text) {
    if (hooks_.note) hooks_.note(absl::StrCat("input '", input_.name(), "': ", text));
  }

  const v1::Input& input_;
  Sink& sink_;
  const std::atomic<bool>& stop_;
  const ListingHooks& hooks_;
  const bool first_only_;
  std::set<DirId> visited_;
  std::string root_real_;
  std::optional<DirId> exclude_;
  std::string exclude_real_;
};

absl::Status PartitionInputs(const std::vector<v1::Input>& inputs, Sink& batcher,
                             TabularSink* tabular, const std::atomic<bool>& stop,
                             const ListingHooks& hooks) {
  for (const auto& input : inputs) {
    if (tabular != nullptr) tabular->SetInput(&input);
    Lister lister(input, batcher, stop, hooks);
    const std::string& path = input.path();
    const int64_t before = batcher.count();
    absl::StatusOr<Walk> walk;
    std::error_code ec;
    if (!input.list_file().empty()) {
      walk = lister.ListFile(input.list_file());
    } else if (IsGlob(path)) {
      walk = lister.Glob(path);
    } else if (fs::is_directory(path, ec)) {
      walk = lister.Folder(path);
    } else if (fs::is_regular_file(path, ec)) {
      auto go_on = batcher.Add(path);  // one input file
      if (!go_on.ok()) return go_on.status();
      walk = *go_on ? Walk::kGoOn : Walk::kStopped;
    } else {
      return absl::NotFoundError(absl::StrCat("input '", input.name(), "': ", Printable(path),
                                              " does not exist; give a folder, a glob or a file "
                                              "(or a list of paths as list_file)"));
    }
    if (!walk.ok()) return walk.status();
    if (*walk == Walk::kStopped) return absl::OkStatus();
    if (!batcher.Flush()) return absl::OkStatus();
    if (batcher.count() == before) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input.name(), "': ",
          Printable(input.list_file().empty() ? path : input.list_file()), " holds no files"));
    }
  }
  return absl::OkStatus();
}

// Stops at the first file.
class FirstFile : public Sink {
 public:
  absl::StatusOr<bool> Add(std::string) override {
    ++count_;
    return false;
  }
};

}  // namespace

absl::Status PartitionFileInputs(const std::vector<v1::Input>& inputs, int64_t mini_batch_size,
                                 const std::function<bool(NewTask)>& emit,
                                 const std::atomic<bool>& stop, const ListingHooks& hooks) {
  Batcher batcher(std::max<int64_t>(1, mini_batch_size), emit);
  return PartitionInputs(inputs, batcher, nullptr, stop, hooks);
}

absl::Status PartitionTabularInputs(const v1::JobSpec& spec,
                                    const std::function<bool(NewTask)>& emit,
                                    const std::atomic<bool>& stop, const ListingHooks& hooks) {
  const std::vector<v1::Input> inputs(spec.inputs().begin(), spec.inputs().end());
  TabularSink sink(spec, emit);
  return PartitionInputs(inputs, sink, &sink, stop, hooks);
}

absl::Status CheckInputsAtSubmit(const v1::JobSpec& spec, const std::function<bool()>& cancelled,
                                 bool name_paths) {
  const std::string output_real = spec.output().empty() ? "" : RealPath(spec.output());
  for (const auto& input : spec.inputs()) {
    const std::string where = absl::StrCat("input '", input.name(), "'");
    if (!input.list_file().empty()) {
      if (auto st = CheckListFile(input, where, cancelled, name_paths); !st.ok()) return st;
      continue;
    }
    const std::string& path = input.path();
    std::error_code ec;
    if (!IsGlob(path) && !fs::exists(path, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", Printable(path),
                       " does not exist on the master; give a folder, a glob or a file the master "
                       "can read (or a text file listing paths as list_file)"));
    }
    if (!output_real.empty() && fs::is_directory(path, ec) && RealPath(path) == output_real) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output: ", spec.output(), " is also the folder of ", where,
          ": each run would list the output of the last one; choose another output folder"));
    }
    if (!IsGlob(path) && !fs::is_directory(path, ec)) continue;  // one file
    // An input with no file fails now, before anything is queued or moved.
    FirstFile first;
    std::atomic<bool> stop{false};
    ListingHooks hooks;
    hooks.exclude_dir = spec.output();
    Lister lister(input, first, stop, hooks, /*first_only=*/true);
    absl::StatusOr<Walk> walk = IsGlob(path) ? lister.Glob(path) : lister.Folder(path);
    if (!walk.ok()) return absl::InvalidArgumentError(walk.status().message());
    if (first.count() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": ", Printable(path), IsGlob(path) ? " matches no file" : " holds no files",
          !output_real.empty() && IsUnder(output_real, RealPath(path))
              ? " (its output folder left out)"
              : "",
          "; check the path, or put the inputs there before submitting"));
    }
  }
  return absl::OkStatus();
}

std::optional<TabularStamp> FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return TabularStamp{st.st_size, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
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

// ValidateJobSpec (declared in common/job_config.h) and its checks, one per
// group of keys. The master runs them on every submitted spec, whatever client
// built it, so they depend only on the spec (and, with check_files, on this
// machine's filesystem), never on the YAML it came from.
#include "common/job_config.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/job_yaml.h"
#include "common/sizes.h"
#include "common/status_macros.h"
#include "common/text.h"

namespace prs {
namespace {

namespace fs = std::filesystem;

using job_yaml::CheckNotUri;
using job_yaml::InvalidArgument;
using job_yaml::MissingKey;

// Argument names ParallelRunStep reserves: each is a key of the job file.
constexpr absl::string_view kReservedArguments[] = {
    "mini_batch_size",
    "error_threshold",
    "allowed_failed_count",
    "allowed_failed_percent",
    "output",
    "output_action",
    "logging_level",
    "process_count_per_node",
    "run_invocation_timeout",
    "run_max_try",
    "append_row_file_name",
};

absl::Status CheckAbsolute(absl::string_view key, const std::string& path) {
  PRS_RETURN_IF_ERROR(CheckNotUri(key, path));
  if (fs::path(path).is_absolute()) return absl::OkStatus();
  return InvalidArgument(absl::StrCat(
      key, ": '", Printable(path),
      "' must be an absolute path (the client resolves paths against the job file's folder)"));
}

absl::Status CheckPositive(absl::string_view key, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return InvalidArgument(absl::StrCat(key, ": must be a positive integer, got ", value));
}

// A positive count with a sane upper bound: a value past it is a typo or a
// misunderstanding, and would exhaust a node or the master before it failed.
absl::Status CheckCount(absl::string_view key, int64_t value, int64_t max, absl::string_view what) {
  PRS_RETURN_IF_ERROR(CheckPositive(key, value));
  if (value <= max) return absl::OkStatus();
  return InvalidArgument(absl::StrCat(key, ": ", value, " is over the limit of ", max, " ", what));
}

// Arguments and variables reach the worker through execve(), which refuses a
// string over 128 KiB and, by default, more than 2 MiB in all: a job that
// would fail there on every node is refused here.
absl::Status CheckExecSizes(const v1::JobSpec& spec) {
  size_t total = 0;
  const auto check = [&](const std::string& key, size_t size) -> absl::Status {
    total += size + 1;
    if (size > kMaxArgumentBytes) {
      return InvalidArgument(absl::StrCat(
          key, ": ", size, " bytes, over the limit of ", kMaxArgumentBytes,
          " bytes for one argument or variable (the OS refuses longer ones when it starts the "
          "worker); pass large data in a file, e.g. a side input"));
    }
    if (total > kMaxArgumentsBytes) {
      return InvalidArgument(absl::StrCat(
          key, ": the arguments and environment variables hold more than ", kMaxArgumentsBytes,
          " bytes in all, more than a worker process can be started with; pass large data in a "
          "file, e.g. a side input"));
    }
    return absl::OkStatus();
  };
  if (spec.arguments_size() > kMaxArguments) {
    return InvalidArgument(absl::StrCat("arguments: ", spec.arguments_size(),
                                        " arguments, over the limit of ", kMaxArguments));
  }
  for (int i = 0; i < spec.arguments_size(); ++i) {
    PRS_RETURN_IF_ERROR(check(absl::StrCat("arguments[", i, "]"), spec.arguments(i).size()));
  }
  for (const auto& [name, value] : spec.environment().variables()) {
    PRS_RETURN_IF_ERROR(check(absl::StrCat("environment.variables.", Printable(name)),
                              name.size() + 1 + value.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckThreshold(absl::string_view key, int64_t value, absl::string_view what) {
  if (value >= -1) return absl::OkStatus();
  return InvalidArgument(absl::StrCat(key, ": must be -1 (ignore failed ", what,
                                      ") or a count of 0 or more, got ", value));
}

bool IsSideInputName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

absl::Status CheckArguments(const v1::JobSpec& spec) {
  if (spec.arguments().empty()) return absl::OkStatus();
  if (!absl::StartsWith(spec.arguments(0), "-")) {
    return InvalidArgument(absl::StrCat(
        "arguments[0]: '", Printable(spec.arguments(0)),
        "' must start with '-': arguments are options the script reads with "
        "argparse.parse_known_args(), e.g. [--labels_dir, \"${side_inputs.labels}\"]"));
  }
  for (int i = 0; i < spec.arguments_size(); ++i) {
    absl::string_view name = spec.arguments(i);
    bool dashed = false;
    while (absl::ConsumePrefix(&name, "-")) dashed = true;
    if (dashed) name = name.substr(0, name.find('='));
    if (std::find(std::begin(kReservedArguments), std::end(kReservedArguments), name) ==
        std::end(kReservedArguments)) {
      continue;
    }
    return InvalidArgument(absl::StrCat("arguments[", i, "]: '", Printable(spec.arguments(i)),
                                        "' is a reserved name; set ", name,
                                        " in the job file instead (or --set ", name, "=...)"));
  }
  return absl::OkStatus();
}

absl::Status CheckInputs(const v1::JobSpec& spec) {
  std::set<std::string> names;
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const v1::Input& input = spec.inputs(i);
    const std::string where = absl::StrCat("inputs[", i, "]");
    if (input.name().empty()) {
      return InvalidArgument(absl::StrCat(where, ": the name is empty; name it, e.g. images"));
    }
    if (!names.insert(input.name()).second) {
      return InvalidArgument(absl::StrCat(where, ": the name '", input.name(),
                                          "' is used twice; give each input its own name"));
    }
    if (!input.type().empty() && input.type() != "file" && input.type() != "tabular") {
      return InvalidArgument(absl::StrCat(where, ": type '", input.type(),
                                          "' is not known; use type: file or type: tabular"));
    }
    if (input.type() != spec.inputs(0).type()) {
      return InvalidArgument(absl::StrCat(where, ": type '", input.type(),
                                          "' differs from inputs[0]'s '", spec.inputs(0).type(),
                                          "'; a job's inputs are all files or all tabular"));
    }
    if (!input.format().empty()) {
      if (input.type() != "tabular") {
        return InvalidArgument(absl::StrCat(
            where, ": format applies to type: tabular inputs; remove it or set type: tabular"));
      }
      if (input.format() != "csv" && input.format() != "tsv" && input.format() != "jsonl") {
        return InvalidArgument(absl::StrCat(where, ": format '", input.format(),
                                            "' is not known; use csv, tsv or jsonl (or leave it "
                                            "out to go by the file extension)"));
      }
    }
    if (input.path().empty() == input.list_file().empty()) {
      return InvalidArgument(absl::StrCat(
          where, input.path().empty() ? ": missing required key 'path'" : ": path and list_file",
          ": give path (a folder, a glob or one file) or list_file (a text file listing paths)",
          input.path().empty() ? "" : ", not both"));
    }
    if (!input.list_file().empty()) {
      PRS_RETURN_IF_ERROR(CheckAbsolute(absl::StrCat(where, ".list_file"), input.list_file()));
    } else {
      PRS_RETURN_IF_ERROR(CheckAbsolute(absl::StrCat(where, ".path"), input.path()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSideInputs(const v1::JobSpec& spec) {
  std::set<std::string> names;
  for (int i = 0; i < spec.side_inputs_size(); ++i) {
    const v1::SideInput& side_input = spec.side_inputs(i);
    const std::string where = absl::StrCat("side_inputs[", i, "]");
    if (!IsSideInputName(side_input.name())) {
      return InvalidArgument(absl::StrCat(
          where, ": the name '", side_input.name(),
          "' must be non-empty and hold only letters, digits, '_', '-' and '.', e.g. labels"));
    }
    if (!names.insert(side_input.name()).second) {
      return InvalidArgument(absl::StrCat(where, ": the name '", side_input.name(),
                                          "' is used twice; give each side input its own name"));
    }
    if (side_input.path().empty()) {
      return InvalidArgument(absl::StrCat(
          where, ": missing required key 'path': the folder or file every worker can read"));
    }
    PRS_RETURN_IF_ERROR(CheckAbsolute(absl::StrCat(where, ".path"), side_input.path()));
  }
  return absl::OkStatus();
}

absl::Status CheckTabularKeys(const v1::JobSpec& spec) {
  const bool tabular = IsTabular(spec);
  if (tabular != (spec.mini_batch_unit() != v1::MINI_BATCH_FILES)) {
    return InvalidArgument(
        tabular ? "mini_batch_size: tabular inputs take a size like 1MB or rows like '5000 rows'"
                : "mini_batch_size: file inputs take a count of files like 10");
  }
  if (!spec.partition_keys().empty()) {
    if (!tabular) {
      return InvalidArgument(
          "partition_keys: partitioning by column values applies to type: tabular inputs; "
          "remove the key or set the inputs' type to tabular");
    }
    std::set<std::string> seen;
    for (int i = 0; i < spec.partition_keys_size(); ++i) {
      const std::string& key = spec.partition_keys(i);
      if (key.empty()) {
        return InvalidArgument(
            absl::StrCat("partition_keys[", i, "]: is empty; give a column name"));
      }
      if (!seen.insert(key).second) {
        return InvalidArgument(absl::StrCat("partition_keys[", i, "]: '", key,
                                            "' is listed twice; list each column once"));
      }
    }
  }
  if (spec.has_append_row_format()) {
    if (spec.output_action() != "append_row") {
      return InvalidArgument(
          "append_row_format: applies to output_action: append_row; remove it for summary_only");
    }
    const std::string& d = spec.append_row_format().delimiter();
    if (d.size() > 1 || d == "\"" || d == "\n" || d == "\r") {
      return InvalidArgument(absl::StrCat(
          "append_row_format.delimiter: '", d,
          "' must be one character other than a quote or a line end, e.g. \",\" or \"\\t\" "
          "(or empty for values joined by a space, unquoted)"));
    }
  }
  return absl::OkStatus();
}

bool IsGlob(absl::string_view path) { return path.find_first_of("*?[") != absl::string_view::npos; }

// source_directory is a folder and entry_script a regular file inside it.
absl::Status CheckSourceFiles(const v1::JobSpec& spec) {
  std::error_code error;
  const fs::path source(spec.source_directory());
  fs::file_status status = fs::status(source, error);
  if (status.type() == fs::file_type::not_found) {
    return InvalidArgument(
        absl::StrCat("source_directory: '", spec.source_directory(), "' does not exist"));
  }
  if (error) {
    return InvalidArgument(absl::StrCat("source_directory: cannot check '", spec.source_directory(),
                                        "': ", error.message()));
  }
  if (!fs::is_directory(status)) {
    return InvalidArgument(
        absl::StrCat("source_directory: '", spec.source_directory(), "' is not a folder"));
  }

  const fs::path script = source / spec.entry_script();
  status = fs::status(script, error);
  if (status.type() == fs::file_type::not_found) {
    return InvalidArgument(absl::StrCat("entry_script: '", spec.entry_script(),
                                        "' is not in source_directory '", spec.source_directory(),
                                        "'"));
  }
  if (error) {
    return InvalidArgument(
        absl::StrCat("entry_script: cannot check '", script.string(), "': ", error.message()));
  }
  if (!fs::is_regular_file(status)) {
    return InvalidArgument(
        absl::StrCat("entry_script: '", script.string(), "' is not a regular file"));
  }
  return absl::OkStatus();
}

// Each input's path is a folder or a file (or a glob), each list_file a file.
absl::Status CheckInputFiles(const v1::JobSpec& spec) {
  std::error_code error;
  fs::file_status status;
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const v1::Input& input = spec.inputs(i);
    const bool list = !input.list_file().empty();
    const std::string& path = list ? input.list_file() : input.path();
    if (!list && IsGlob(path)) continue;  // the master checks that it matches
    const std::string where =
        absl::StrCat("inputs[", i, "] (", input.name(), ")", list ? ".list_file" : "");
    status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) {
      return InvalidArgument(
          absl::StrCat(where, ": '", Printable(path), "' does not exist; ",
                       list ? "give a text file listing paths"
                            : "give a folder, a glob or one file (or a list as list_file)"));
    }
    if (error) {
      return InvalidArgument(
          absl::StrCat(where, ": cannot check '", Printable(path), "': ", error.message()));
    }
    if (list ? !fs::is_regular_file(status)
             : !fs::is_directory(status) && !fs::is_regular_file(status)) {
      return InvalidArgument(absl::StrCat(where, ": '", Printable(path), "' is ",
                                          list ? "not a file" : "neither a folder nor a file"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFiles(const v1::JobSpec& spec) {
  PRS_RETURN_IF_ERROR(CheckSourceFiles(spec));
  return CheckInputFiles(spec);
}

// Every text of the spec is UTF-8: YAML is, and protobuf strings must be. A
// folder whose name is not UTF-8 is reached with a glob.
absl::Status CheckUtf8(const v1::JobSpec& spec) {
  std::vector<std::pair<std::string, const std::string*>> texts = {
      {"name", &spec.name()},
      {"entry_script", &spec.entry_script()},
      {"source_directory", &spec.source_directory()},
      {"output", &spec.output()},
      {"output_action", &spec.output_action()},
      {"append_row_file_name", &spec.append_row_file_name()},
      {"mini_batch_size", &spec.mini_batch_size_text()},
      {"logging_level", &spec.logging_level()},
      {"environment.python", &spec.environment().python()},
      {"append_row_format.delimiter", &spec.append_row_format().delimiter()},
  };
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const v1::Input& input = spec.inputs(i);
    texts.emplace_back(absl::StrCat("inputs[", i, "].name"), &input.name());
    texts.emplace_back(absl::StrCat("inputs[", i, "].type"), &input.type());
    texts.emplace_back(absl::StrCat("inputs[", i, "].path"), &input.path());
    texts.emplace_back(absl::StrCat("inputs[", i, "].format"), &input.format());
    texts.emplace_back(absl::StrCat("inputs[", i, "].list_file"), &input.list_file());
  }
  for (int i = 0; i < spec.side_inputs_size(); ++i) {
    texts.emplace_back(absl::StrCat("side_inputs[", i, "].name"), &spec.side_inputs(i).name());
    texts.emplace_back(absl::StrCat("side_inputs[", i, "].path"), &spec.side_inputs(i).path());
  }
  for (int i = 0; i < spec.arguments_size(); ++i) {
    texts.emplace_back(absl::StrCat("arguments[", i, "]"), &spec.arguments(i));
  }
  for (int i = 0; i < spec.partition_keys_size(); ++i) {
    texts.emplace_back(absl::StrCat("partition_keys[", i, "]"), &spec.partition_keys(i));
  }
  for (const auto& [name, value] : spec.environment().variables()) {
    texts.emplace_back("environment.variables", &name);
    texts.emplace_back(absl::StrCat("environment.variables.", SanitizeUtf8(name)), &value);
  }
  for (const auto& [key, text] : texts) {
    if (IsValidUtf8(*text)) continue;
    return InvalidArgument(absl::StrCat(
        key, ": '", Printable(*text),
        "' is not UTF-8 text; a job file is UTF-8 (as YAML is). To reach a file or folder "
        "whose name is not UTF-8, use a glob, e.g. /data/caf*"));
  }
  return absl::OkStatus();
}

absl::Status CheckRequiredKeys(const v1::JobSpec& spec) {
  if (spec.name().empty()) {
    return MissingKey("name", "the job's name, 3-32 characters like predict-digits");
  }
  if (spec.entry_script().empty()) {
    return MissingKey("entry_script",
                      "the script with init() and run(mini_batch), relative to source_directory");
  }
  if (spec.source_directory().empty()) {
    return MissingKey("source_directory",
                      "the folder that holds entry_script; it is snapshotted at submit");
  }
  if (spec.inputs().empty()) {
    return MissingKey("inputs",
                      "the data to split into mini-batches, e.g. inputs: [{name: images, path: "
                      "./data}]");
  }
  if (spec.output_action() == "append_row" && spec.output().empty()) {
    return MissingKey("output",
                      "the folder for the append_row output file; or set output_action: "
                      "summary_only");
  }
  return absl::OkStatus();
}

absl::Status CheckEntryScript(const v1::JobSpec& spec) {
  const fs::path entry_script(spec.entry_script());
  if (entry_script.is_absolute()) {
    return InvalidArgument(absl::StrCat("entry_script: '", spec.entry_script(),
                                        "' must be relative to source_directory, e.g. score.py"));
  }
  for (const fs::path& part : entry_script) {
    if (part == "..") {
      return InvalidArgument(absl::StrCat("entry_script: '", spec.entry_script(),
                                          "' must stay inside source_directory (no '..')"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOutput(const v1::JobSpec& spec) {
  if (spec.output_action() != "append_row" && spec.output_action() != "summary_only") {
    return InvalidArgument(absl::StrCat("output_action: '", spec.output_action(),
                                        "' must be append_row or summary_only"));
  }
  if (!spec.output().empty()) {
    PRS_RETURN_IF_ERROR(CheckAbsolute("output", spec.output()));
  }
  return ValidateFileName(spec.append_row_file_name());
}

// The bound depends on the unit: files, bytes or rows.
absl::Status CheckMiniBatchSize(const v1::JobSpec& spec) {
  PRS_RETURN_IF_ERROR(CheckPositive("mini_batch_size", spec.mini_batch_size()));
  PRS_RETURN_IF_ERROR(CheckTabularKeys(spec));
  switch (spec.mini_batch_unit()) {
    case v1::MINI_BATCH_BYTES:
      return CheckCount("mini_batch_size", spec.mini_batch_size(), kMaxMiniBatchBytes,
                        "bytes (4GB); a mini-batch is read into memory");
    case v1::MINI_BATCH_ROWS:
      return CheckCount("mini_batch_size", spec.mini_batch_size(), kMaxMiniBatchRows,
                        "rows; a mini-batch is read into memory");
    default:
      return CheckCount("mini_batch_size", spec.mini_batch_size(), kMaxMiniBatchFiles,
                        "files per mini-batch; use more mini-batches, not larger ones");
  }
}

// The counts of nodes, processes and tries, and the failure thresholds.
absl::Status CheckCountsAndThresholds(const v1::JobSpec& spec) {
  PRS_RETURN_IF_ERROR(CheckCount("node_count", spec.node_count(), kMaxNodeCount, "nodes"));
  PRS_RETURN_IF_ERROR(CheckCount("process_count_per_node", spec.process_count_per_node(),
                                 kMaxProcessesPerNode, "worker processes per node"));
  PRS_RETURN_IF_ERROR(CheckCount("run_invocation_timeout", spec.run_invocation_timeout(),
                                 kMaxTimeoutSeconds, "seconds (7 days) for one run() call"));
  PRS_RETURN_IF_ERROR(
      CheckCount("run_max_try", spec.run_max_try(), kMaxTries, "tries of one mini-batch"));
  if (spec.has_gpus_per_process() &&
      (spec.gpus_per_process() < 0 || spec.gpus_per_process() > kMaxGpusPerProcess)) {
    return InvalidArgument(absl::StrCat("gpus_per_process: must be between 0 (no GPU) and ",
                                        kMaxGpusPerProcess, ", got ", spec.gpus_per_process()));
  }
  PRS_RETURN_IF_ERROR(CheckThreshold("error_threshold", spec.error_threshold(), "items"));
  PRS_RETURN_IF_ERROR(
      CheckThreshold("allowed_failed_count", spec.allowed_failed_count(), "mini-batches"));
  if (spec.allowed_failed_percent() < 0 || spec.allowed_failed_percent() > 100) {
    return InvalidArgument(absl::StrCat("allowed_failed_percent: must be between 0 and 100, got ",
                                        spec.allowed_failed_percent()));
  }
  return absl::OkStatus();
}

// The intervals where 0 means off.
absl::Status CheckIntervals(const v1::JobSpec& spec) {
  if (spec.resource_monitor_interval() < 0 ||
      spec.resource_monitor_interval() > kMaxTimeoutSeconds) {
    return InvalidArgument(
        absl::StrCat("resource_monitor_interval: must be 0 (off) or a number of seconds up to ",
                     kMaxTimeoutSeconds, ", got ", spec.resource_monitor_interval()));
  }
  for (const auto& [key, value] :
       {std::pair<absl::string_view, int64_t>{"progress_update_timeout",
                                              spec.progress_update_timeout()},
        {"first_task_creation_timeout", spec.first_task_creation_timeout()}}) {
    if (value < 0 || value > kMaxTimeoutSeconds) {
      return InvalidArgument(absl::StrCat(key, ": must be 0 (off) or a number of seconds up to ",
                                          kMaxTimeoutSeconds, ", got ", value));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLoggingLevel(const v1::JobSpec& spec) {
  if (spec.logging_level() != "WARNING" && spec.logging_level() != "INFO" &&
      spec.logging_level() != "DEBUG") {
    return InvalidArgument(
        absl::StrCat("logging_level: '", spec.logging_level(), "' must be WARNING, INFO or DEBUG"));
  }
  return absl::OkStatus();
}

// execve() cannot pass a name holding '=' or NUL.
absl::Status CheckVariableNames(const v1::JobSpec& spec) {
  for (const auto& [name, value] : spec.environment().variables()) {
    if (name.empty() || name.find_first_of(std::string("=\0", 2)) != std::string::npos) {
      return InvalidArgument(absl::StrCat("environment.variables: '", name,
                                          "' is not a variable name; use letters, digits and "
                                          "'_', e.g. OMP_NUM_THREADS"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// The checks run in this order, and the first problem is the one reported:
// users and tests see a missing key before a bad value.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, bool check_files) {
  PRS_RETURN_IF_ERROR(CheckUtf8(spec));
  PRS_RETURN_IF_ERROR(CheckRequiredKeys(spec));
  PRS_RETURN_IF_ERROR(ValidateJobName(spec.name()));
  PRS_RETURN_IF_ERROR(CheckEntryScript(spec));
  PRS_RETURN_IF_ERROR(CheckAbsolute("source_directory", spec.source_directory()));
  PRS_RETURN_IF_ERROR(CheckInputs(spec));
  PRS_RETURN_IF_ERROR(CheckSideInputs(spec));
  PRS_RETURN_IF_ERROR(CheckOutput(spec));
  PRS_RETURN_IF_ERROR(CheckMiniBatchSize(spec));
  PRS_RETURN_IF_ERROR(CheckCountsAndThresholds(spec));
  PRS_RETURN_IF_ERROR(CheckIntervals(spec));
  PRS_RETURN_IF_ERROR(CheckLoggingLevel(spec));
  PRS_RETURN_IF_ERROR(CheckArguments(spec));
  PRS_RETURN_IF_ERROR(CheckExecSizes(spec));
  PRS_RETURN_IF_ERROR(CheckVariableNames(spec));
  if (check_files) PRS_RETURN_IF_ERROR(CheckFiles(spec));
  return absl::OkStatus();
}

}  // namespace prs

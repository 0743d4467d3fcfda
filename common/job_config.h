// The job file: YAML with ParallelRunStep's parameter names, turned into a
// v1::JobSpec, and the checks every JobSpec must pass before it is queued.
//
// Keys (defaults in brackets; see docs and DESIGN.md "The job file"):
//   name, entry_script, source_directory, inputs           required
//   output                     required when output_action is append_row
//   side_inputs [none], arguments [none], output_action [append_row],
//   append_row_file_name [parallel_run_step.txt], mini_batch_size [10],
//   error_threshold [-1], allowed_failed_count [-1], allowed_failed_percent
//   [100], node_count [1], process_count_per_node [1], run_invocation_timeout
//   [60], run_max_try [3], logging_level [INFO], resource_monitor_interval
//   [600], allow_reuse [true], environment {python, variables} [none],
//   partition_keys [none], append_row_format [none].
// Also accepted, mapped onto the names above (giving both is an error):
//   instance_count -> node_count, max_concurrency_per_instance ->
//   process_count_per_node, mini_batch_error_threshold ->
//   allowed_failed_count, environment_variables -> environment.variables,
//   retry_settings {max_retries, timeout} -> run_max_try = max_retries + 1,
//   run_invocation_timeout = timeout.
//
// All functions are thread-safe (no shared state). Messages name the key and
// the fix; they do not repeat the job file's path, so callers that print
// them should say which file they loaded.
//
// The code: job_config.cc (the keys and the conversion to a JobSpec),
// job_yaml.h (reading YAML: known keys, typed values, paths, --set),
// job_config_arguments.h (`arguments` and the runtime options in them) and
// job_spec_checks.cc (ValidateJobSpec).
#ifndef PRS_COMMON_JOB_CONFIG_H_
#define PRS_COMMON_JOB_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "prs/v1/job.pb.h"

namespace prs {

// Upper bounds of the job file's counts, checked by ValidateJobSpec. Past
// them a value is a typo or would exhaust a node or the master before it
// failed.
inline constexpr int64_t kMaxNodeCount = 10'000;
inline constexpr int64_t kMaxProcessesPerNode = 1'024;
inline constexpr int64_t kMaxGpusPerProcess = 64;
inline constexpr int64_t kMaxMiniBatchFiles = 100'000;
inline constexpr int64_t kMaxMiniBatchBytes = int64_t{4} << 30;
inline constexpr int64_t kMaxMiniBatchRows = 100'000'000;
inline constexpr int64_t kMaxTimeoutSeconds = 7 * 24 * 3600;
inline constexpr int64_t kMaxTries = 100;
// One argument or environment variable, all of them, and how many arguments:
// what execve() can start a worker with (MAX_ARG_STRLEN is 128 KiB).
inline constexpr size_t kMaxArgumentBytes = 64 << 10;
inline constexpr size_t kMaxArgumentsBytes = 512 << 10;
inline constexpr int kMaxArguments = 4'096;

// Reads the job file at `path` and parses it with ParseJobYaml, resolving
// relative paths against the file's folder. Returns NOT_FOUND when the file
// does not exist, INVALID_ARGUMENT (with the path) when it is a folder or
// cannot be read, and otherwise whatever ParseJobYaml returns.
absl::StatusOr<v1::JobSpec> LoadJobFile(const std::string& path,
                                        const std::vector<std::string>& overrides);

// Parses a job file's text into a JobSpec.
//
// `base_dir` is the folder relative paths are resolved against (made absolute
// against the current directory if it is relative; empty means the current
// directory). source_directory, each input's and side input's path, output,
// and environment.python when it contains a '/' become absolute, lexically
// normalized paths without a trailing '/'; a leading "~/" is the user's home.
// Nothing is required to exist here: see ValidateJobSpec(check_files=true).
//
// `overrides` are "key=value" strings (`prs submit --set`), applied in order
// to the YAML tree before conversion. Keys are dotted paths into maps
// ("environment.python", "environment.variables.OMP_NUM_THREADS"; list items
// by index, "inputs.0.path"); the value is parsed as YAML, so
// "arguments=[--a, 1]" sets a list, and an empty value unsets the key.
//
// `inputs` is a list of {name, type, path} maps or plain paths, or a single
// path; an input's name defaults to "input<i>" (from 0) and its type to
// "file" (or "tabular", with an optional format: csv|tsv|jsonl); all inputs
// share one type. For tabular inputs mini_batch_size is a size ("1MB", the
// default) or rows ("5000 rows"); partition_keys (a list of columns) and
// append_row_format {delimiter [","], header [false]} are also read. `arguments` is a list of
// scalars; "${side_inputs.NAME}" inside an argument becomes that side input's
// absolute path. mini_batch_size must be a file count (mini_batch_size_text
// keeps it as written). logging_level is stored uppercase and output_action
// lowercase; both are matched case-insensitively here.
//
// The result has passed ValidateJobSpec(spec, /*check_files=*/false).
// Returns INVALID_ARGUMENT for YAML syntax errors ("job file line 3, column
// 5: ..."), malformed overrides, unknown keys (with the nearest known key:
// "unknown key 'mini_batch_sise'; did you mean 'mini_batch_size'?"), values
// of the wrong type ("node_count: 'two' is not an integer"), and every check
// of ValidateJobSpec.
absl::StatusOr<v1::JobSpec> ParseJobYaml(const std::string& yaml_text, const std::string& base_dir,
                                         const std::vector<std::string>& overrides);

// Checks a JobSpec as it is submitted. Used by the client after parsing
// (check_files=true) and by the master on submit, so a spec built by any
// client gets the same checks. Values must be in canonical form, as
// ParseJobYaml produces them: absolute paths, logging_level one of WARNING,
// INFO, DEBUG, output_action one of append_row, summary_only.
//
// Always checks: the required keys (name, entry_script, source_directory,
// inputs; output when output_action is append_row), the job name,
// entry_script relative without "..", input types and unique names, side
// input names, append_row_file_name, positive node_count,
// process_count_per_node, run_max_try, run_invocation_timeout and
// mini_batch_size, error_threshold and allowed_failed_count >= -1,
// allowed_failed_percent in 0..100, resource_monitor_interval >= 0, the
// arguments (the first starts with '-', none is a reserved name such as
// --mini_batch_size) and environment variable names.
//
// With check_files it also checks, on this machine's filesystem: that
// source_directory is a folder, entry_script a regular file inside it, and
// each input path an existing folder or file (a glob, a path with any of
// "*?[", need not match anything yet). Side inputs are not checked: they may
// exist only on the agents' nodes.
//
// Returns OK or INVALID_ARGUMENT naming the first problem found.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, bool check_files);

// True when the job's inputs are type: tabular (all inputs share one type).
bool IsTabular(const v1::JobSpec& spec);

}  // namespace prs

#endif  // PRS_COMMON_JOB_CONFIG_H_

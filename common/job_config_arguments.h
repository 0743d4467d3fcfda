// The job file's `arguments`: the list passed to the entry script, with
// ${side_inputs.NAME} replaced by that side input's path, and ParallelRunStep's
// runtime options given in it, which prs honours as settings too
// (--progress_update_timeout, --first_task_creation_timeout,
// --resource_monitor_interval, --append_row_dataframe_header). The arguments
// reach the script unchanged either way.
//
// Internal to common/: job_config.cc calls these while it converts the job
// file (see ParseJobYaml in common/job_config.h). Thread-safe (no shared
// state); errors are INVALID_ARGUMENT naming the key and the fix.
#ifndef PRS_COMMON_JOB_CONFIG_ARGUMENTS_H_
#define PRS_COMMON_JOB_CONFIG_ARGUMENTS_H_

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "common/job_yaml.h"
#include "prs/v1/job.pb.h"

namespace prs::job_arguments {

// Appends `arguments` (a list of scalars; unset is none) to spec.arguments,
// replacing each ${side_inputs.NAME} with the side input's path. Call it
// after spec.side_inputs are read.
absl::Status ReadArguments(const YAML::Node& node, v1::JobSpec& spec);

// Sets progress_update_timeout, first_task_creation_timeout and
// resource_monitor_interval from `--NAME VALUE` or `--NAME=VALUE` in
// spec.arguments (the last one wins). A value that is not a number of seconds
// is an error, and so is a different value for the same key in `top`, the job
// file's top-level map.
absl::Status ReadRuntimeOptions(const job_yaml::Fields& top, v1::JobSpec& spec);

// --append_row_dataframe_header in spec.arguments (a flag, or with a boolean
// value; the last one wins) sets append_row_format to rows of values joined
// by a space, unquoted, with a header line. It does nothing when
// append_row_format is already set or output_action is not append_row.
void ReadAppendRowDataframeHeader(v1::JobSpec& spec);

}  // namespace prs::job_arguments

#endif  // PRS_COMMON_JOB_CONFIG_ARGUMENTS_H_

#include "common/job_config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/job_config_arguments.h"
#include "common/job_yaml.h"
#include "common/sizes.h"
#include "common/status_macros.h"
#include "common/text.h"

namespace prs {
namespace {

namespace fs = std::filesystem;

using job_arguments::ReadAppendRowDataframeHeader;
using job_arguments::ReadArguments;
using job_arguments::ReadRuntimeOptions;
using job_yaml::AbsoluteBase;
using job_yaml::Alias;
using job_yaml::ApplyOverride;
using job_yaml::CheckNotUri;
using job_yaml::Field;
using job_yaml::Fields;
using job_yaml::Get;
using job_yaml::InvalidArgument;
using job_yaml::IsUnset;
using job_yaml::Kind;
using job_yaml::OneOrList;
using job_yaml::ParseYamlValue;
using job_yaml::ReadBool;
using job_yaml::ReadInt;
using job_yaml::ReadMap;
using job_yaml::ReadMapText;
using job_yaml::ReadScalar;
using job_yaml::ResolvePath;
using job_yaml::ResolveUserPath;
using job_yaml::YamlError;

// The keys of the job file, in the order the docs list them.
constexpr absl::string_view kTopLevelKeys[] = {
    "name",
    "entry_script",
    "source_directory",
    "inputs",
    "side_inputs",
    "arguments",
    "output",
    "output_action",
    "append_row_file_name",
    "mini_batch_size",
    "partition_keys",
    "append_row_format",
    "error_threshold",
    "allowed_failed_count",
    "allowed_failed_percent",
    "node_count",
    "process_count_per_node",
    "run_invocation_timeout",
    "run_max_try",
    "logging_level",
    "resource_monitor_interval",
    "progress_update_timeout",
    "first_task_creation_timeout",
    "gpus_per_process",
    "allow_reuse",
    "environment",
};
// Accepted at the top level too, but not listed in messages: other spellings
// of the keys above (Azure ML v2 parallel job, ParallelRunConfig) and keys
// refused with a specific message.
constexpr absl::string_view kOtherTopLevelKeys[] = {
    "instance_count", "max_concurrency_per_instance", "mini_batch_error_threshold",
    "retry_settings", "environment_variables",
};
constexpr absl::string_view kInputKeys[] = {"name", "type", "path", "list_file", "format"};
constexpr absl::string_view kAppendRowFormatKeys[] = {"delimiter", "header"};
constexpr absl::string_view kSideInputKeys[] = {"name", "path"};
constexpr absl::string_view kEnvironmentKeys[] = {"python", "variables"};
constexpr absl::string_view kRetrySettingsKeys[] = {"max_retries", "timeout"};

// Other names for keys (the v2 parallel job's names).
constexpr Alias kAliases[] = {
    {"node_count", "instance_count"},
    {"process_count_per_node", "max_concurrency_per_instance"},
    {"allowed_failed_count", "mini_batch_error_threshold"},
};

// An integer key and where it goes in the JobSpec.
struct IntKey {
  absl::string_view key;
  int64_t min;
  int64_t max;
  void (*set)(v1::JobSpec&, int64_t);
};
constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// Only the type's range is checked here; ValidateJobSpec checks the meaning.
constexpr IntKey kIntKeys[] = {
    {"error_threshold", kInt64Min, kInt64Max,
     [](v1::JobSpec& s, int64_t v) { s.set_error_threshold(v); }},
    {"allowed_failed_count", kInt64Min, kInt64Max,
     [](v1::JobSpec& s, int64_t v) { s.set_allowed_failed_count(v); }},
    {"allowed_failed_percent", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_allowed_failed_percent(static_cast<int32_t>(v)); }},
    {"node_count", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_node_count(static_cast<int32_t>(v)); }},
    {"process_count_per_node", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_process_count_per_node(static_cast<int32_t>(v)); }},
    {"run_invocation_timeout", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_run_invocation_timeout(static_cast<int32_t>(v)); }},
    {"run_max_try", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_run_max_try(static_cast<int32_t>(v)); }},
    {"resource_monitor_interval", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_resource_monitor_interval(static_cast<int32_t>(v)); }},
    {"progress_update_timeout", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_progress_update_timeout(static_cast<int32_t>(v)); }},
    {"first_task_creation_timeout", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_first_task_creation_timeout(static_cast<int32_t>(v)); }},
    {"gpus_per_process", kInt32Min, kInt32Max,
     [](v1::JobSpec& s, int64_t v) { s.set_gpus_per_process(static_cast<int32_t>(v)); }},
};

// One item of `inputs` given as a map: sets the input's name, type, format
// and list_file, and returns its path ("" when list_file is given).
absl::StatusOr<std::string> ReadInputMap(const YAML::Node& item, const std::string& where,
                                         const fs::path& base, v1::Input& input) {
  absl::StatusOr<Fields> fields = ReadMap(item, where, kInputKeys);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<std::string> name = ReadMapText(*fields, where, "name");
  if (!name.ok()) return name.status();
  if (!name->empty()) input.set_name(*name);
  absl::StatusOr<std::string> type = ReadMapText(*fields, where, "type");
  if (!type.ok()) return type.status();
  if (!type->empty()) input.set_type(absl::AsciiStrToLower(*type));
  absl::StatusOr<std::string> path = ReadMapText(*fields, where, "path");
  if (!path.ok()) return path.status();
  absl::StatusOr<std::string> format = ReadMapText(*fields, where, "format");
  if (!format.ok()) return format.status();
  input.set_format(absl::AsciiStrToLower(*format));
  absl::StatusOr<std::string> list_file = ReadMapText(*fields, where, "list_file");
  if (!list_file.ok()) return list_file.status();
  if (list_file->empty()) return path;
  if (!path->empty()) {
    return InvalidArgument(
        absl::StrCat(where,
                     ": give path (a folder, a glob or one file) or list_file (a text file "
                     "listing paths), not both"));
  }
  auto resolved = ResolveUserPath(base, absl::StrCat(where, ".list_file"), *list_file);
  if (!resolved.ok()) return resolved.status();
  input.set_list_file(*std::move(resolved));
  return std::string();
}

// One item of `inputs`: a path, or a map {name, type, path | list_file, format}.
absl::Status ReadInput(const YAML::Node& item, const std::string& where, const fs::path& base,
                       v1::Input& input) {
  std::string path;
  if (item.IsScalar()) {
    path = item.Scalar();
  } else if (item.IsMap()) {
    absl::StatusOr<std::string> map_path = ReadInputMap(item, where, base, input);
    if (!map_path.ok()) return map_path.status();
    if (!input.list_file().empty()) return absl::OkStatus();
    path = *std::move(map_path);
  } else {
    return InvalidArgument(
        absl::StrCat(where, ": must be a path or a map {name, type, path}, got ", Kind(item)));
  }
  if (path.empty()) {
    return InvalidArgument(absl::StrCat(where,
                                        ": missing required key 'path': a folder, a glob or one "
                                        "file (or list_file: a text file listing paths)"));
  }
  auto resolved = ResolveUserPath(base, absl::StrCat(where, ".path"), path);
  if (!resolved.ok()) return resolved.status();
  input.set_path(*std::move(resolved));
  return absl::OkStatus();
}

absl::Status ReadInputs(const YAML::Node& node, const fs::path& base, v1::JobSpec& spec) {
  if (IsUnset(node)) return absl::OkStatus();  // ValidateJobSpec reports it missing.
  const std::optional<std::vector<YAML::Node>> items = OneOrList(node);
  if (!items) {
    return InvalidArgument(
        "inputs: must be a list of {name, type, path} or a single path, got a map; e.g. "
        "inputs: [{name: images, type: file, path: ./data}]");
  }
  for (size_t i = 0; i < items->size(); ++i) {
    v1::Input* input = spec.add_inputs();
    input->set_name(absl::StrCat("input", i));
    input->set_type("file");
    PRS_RETURN_IF_ERROR(ReadInput((*items)[i], absl::StrCat("inputs[", i, "]"), base, *input));
  }
  return absl::OkStatus();
}

absl::Status ReadSideInputs(const YAML::Node& node, const fs::path& base, v1::JobSpec& spec) {
  if (IsUnset(node)) return absl::OkStatus();
  if (!node.IsSequence()) {
    return InvalidArgument(
        absl::StrCat("side_inputs: must be a list like [{name: labels, path: ./data/labels}], got ",
                     Kind(node)));
  }
  size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string where = absl::StrCat("side_inputs[", i++, "]");
    if (!item.IsMap()) {
      return InvalidArgument(absl::StrCat(
          where, ": must be a map like {name: labels, path: ./data/labels}, got ", Kind(item)));
    }
    absl::StatusOr<Fields> fields = ReadMap(item, where, kSideInputKeys);
    if (!fields.ok()) return fields.status();
    absl::StatusOr<std::string> name = ReadMapText(*fields, where, "name");
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> path = ReadMapText(*fields, where, "path");
    if (!path.ok()) return path.status();
    if (name->empty()) {
      return InvalidArgument(absl::StrCat(
          where, ": missing required key 'name': arguments refer to it as ${side_inputs.NAME}"));
    }
    if (path->empty()) {
      return InvalidArgument(absl::StrCat(
          where, ": missing required key 'path': the folder or file every worker can read"));
    }
    v1::SideInput* side_input = spec.add_side_inputs();
    side_input->set_name(*name);
    auto resolved = ResolveUserPath(base, absl::StrCat(where, ".path"), *path);
    if (!resolved.ok()) return resolved.status();
    side_input->set_path(*std::move(resolved));
  }
  return absl::OkStatus();
}

absl::Status ReadEnvironment(const Fields& top, const fs::path& base, v1::JobSpec& spec) {
  YAML::Node environment_node;
  if (auto it = top.find("environment"); it != top.end()) environment_node = it->second;
  absl::StatusOr<Fields> environment = ReadMap(environment_node, "environment", kEnvironmentKeys);
  if (!environment.ok()) return environment.status();

  if (auto it = environment->find("python"); it != environment->end()) {
    absl::StatusOr<std::optional<std::string>> python =
        ReadScalar(it->second, "environment.python");
    if (!python.ok()) return python.status();
    const std::string text = python->value_or("");
    // "python3" is looked up on the agent's PATH; "./venv/bin/python" is a path.
    if (!text.empty()) {
      PRS_RETURN_IF_ERROR(CheckNotUri("environment.python", text));
      spec.mutable_environment()->set_python(absl::StrContains(text, '/') ? ResolvePath(base, text)
                                                                          : text);
    }
  }

  Field variables{YAML::Node(), "environment.variables"};
  if (auto it = environment->find("variables"); it != environment->end()) {
    variables.node = it->second;
  }
  if (auto it = top.find("environment_variables"); it != top.end() && !IsUnset(it->second)) {
    if (!IsUnset(variables.node)) {
      return InvalidArgument(
          "environment.variables and environment_variables are the same setting; keep one of "
          "them");
    }
    variables = Field{it->second, "environment_variables"};
  }
  absl::StatusOr<Fields> values = ReadMap(variables.node, variables.key, {});
  if (!values.ok()) return values.status();
  for (const auto& [name, value] : *values) {
    absl::StatusOr<std::optional<std::string>> text =
        ReadScalar(value, absl::StrCat(variables.key, ".", name));
    if (!text.ok()) return text.status();
    (*spec.mutable_environment()->mutable_variables())[name] = text->value_or("");
  }
  return absl::OkStatus();
}

absl::Status ReadRetrySettings(const Fields& top, v1::JobSpec& spec) {
  auto retry = top.find("retry_settings");
  if (retry == top.end()) return absl::OkStatus();
  absl::StatusOr<Fields> fields = ReadMap(retry->second, "retry_settings", kRetrySettingsKeys);
  if (!fields.ok()) return fields.status();
  if (auto it = fields->find("max_retries"); it != fields->end() && !IsUnset(it->second)) {
    if (top.count("run_max_try") != 0) {
      return InvalidArgument(
          "run_max_try and retry_settings.max_retries both set the tries; keep one "
          "(run_max_try = max_retries + 1)");
    }
    absl::StatusOr<std::optional<int64_t>> retries =
        ReadInt(it->second, "retry_settings.max_retries", 0, kInt32Max - 1);
    if (!retries.ok()) return retries.status();
    spec.set_run_max_try(static_cast<int32_t>(**retries + 1));
  }
  if (auto it = fields->find("timeout"); it != fields->end() && !IsUnset(it->second)) {
    if (top.count("run_invocation_timeout") != 0) {
      return InvalidArgument(
          "run_invocation_timeout and retry_settings.timeout are the same setting; keep one");
    }
    absl::StatusOr<std::optional<int64_t>> timeout =
        ReadInt(it->second, "retry_settings.timeout", kInt32Min, kInt32Max);
    if (!timeout.ok()) return timeout.status();
    spec.set_run_invocation_timeout(static_cast<int32_t>(**timeout));
  }
  return absl::OkStatus();
}

// mini_batch_size: a count of files for file inputs; a size ("1MB", the
// default) or a count of rows ("5000 rows") for tabular inputs.
absl::Status ReadMiniBatchSize(const std::string& text, v1::JobSpec& spec) {
  const bool tabular = IsTabular(spec);
  if (text.empty()) {
    if (tabular) {
      spec.set_mini_batch_size(1 << 20);
      spec.set_mini_batch_size_text("1MB");
      spec.set_mini_batch_unit(v1::MINI_BATCH_BYTES);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<MiniBatchSize> size = ParseMiniBatchSize(text);
  if (!size.ok()) return size.status();
  const std::string written = Printable(absl::StripAsciiWhitespace(text));
  if (!tabular && size->kind == MiniBatchSize::kBytes) {
    return InvalidArgument(absl::StrCat(
        "mini_batch_size: '", written,
        "' is a size in bytes, which applies to tabular inputs; for file inputs use a count "
        "of files like 10"));
  }
  if (!tabular && size->kind == MiniBatchSize::kRows) {
    return InvalidArgument(absl::StrCat(
        "mini_batch_size: '", written,
        "' counts rows, which applies to tabular inputs; for file inputs use a count of "
        "files like 10"));
  }
  if (tabular && size->kind == MiniBatchSize::kCount) {
    return InvalidArgument(absl::StrCat(
        "mini_batch_size: '", written,
        "' is a count of files; for tabular inputs use a size like 1MB or a count of rows like "
        "'5000 rows'"));
  }
  spec.set_mini_batch_size(size->value);
  spec.set_mini_batch_size_text(written);
  spec.set_mini_batch_unit(size->kind == MiniBatchSize::kBytes  ? v1::MINI_BATCH_BYTES
                           : size->kind == MiniBatchSize::kRows ? v1::MINI_BATCH_ROWS
                                                                : v1::MINI_BATCH_FILES);
  return absl::OkStatus();
}

// partition_keys: a column name or a list of them.
absl::Status ReadPartitionKeys(const YAML::Node& node, v1::JobSpec& spec) {
  if (IsUnset(node)) return absl::OkStatus();
  const std::optional<std::vector<YAML::Node>> items = OneOrList(node);
  if (!items) {
    return InvalidArgument(
        "partition_keys: must be a list of column names, e.g. [store, brand, week], got a map");
  }
  for (size_t i = 0; i < items->size(); ++i) {
    absl::StatusOr<std::optional<std::string>> key =
        ReadScalar((*items)[i], absl::StrCat("partition_keys[", i, "]"));
    if (!key.ok()) return key.status();
    spec.add_partition_keys(key->value_or(""));
  }
  return absl::OkStatus();
}

// append_row_format: {delimiter: ",", header: false}.
absl::Status ReadAppendRowFormat(const YAML::Node& node, v1::JobSpec& spec) {
  if (IsUnset(node)) return absl::OkStatus();
  absl::StatusOr<Fields> fields = ReadMap(node, "append_row_format", kAppendRowFormatKeys);
  if (!fields.ok()) return fields.status();
  v1::AppendRowFormat* format = spec.mutable_append_row_format();
  format->set_delimiter(",");
  if (auto it = fields->find("delimiter"); it != fields->end()) {
    absl::StatusOr<std::optional<std::string>> text =
        ReadScalar(it->second, "append_row_format.delimiter");
    if (!text.ok()) return text.status();
    if (text->has_value()) format->set_delimiter(**text);
  }
  if (auto it = fields->find("header"); it != fields->end()) {
    absl::StatusOr<std::optional<bool>> header = ReadBool(it->second, "append_row_format.header");
    if (!header.ok()) return header.status();
    if (header->has_value()) format->set_header(**header);
  }
  return absl::OkStatus();
}

void SetDefaults(v1::JobSpec& spec) {
  spec.set_output_action("append_row");
  spec.set_append_row_file_name("parallel_run_step.txt");
  spec.set_mini_batch_size(10);
  spec.set_mini_batch_size_text("10");
  spec.set_error_threshold(-1);
  spec.set_allowed_failed_count(-1);
  spec.set_allowed_failed_percent(100);
  spec.set_node_count(1);
  spec.set_process_count_per_node(1);
  spec.set_run_invocation_timeout(60);
  spec.set_run_max_try(3);
  spec.set_logging_level("INFO");
  spec.set_resource_monitor_interval(600);
  spec.set_first_task_creation_timeout(600);
  spec.set_allow_reuse(true);
}

// A plain string; an empty string is the same as leaving the key out.
absl::StatusOr<std::string> ReadString(const Fields& top, absl::string_view key) {
  absl::StatusOr<Field> field = Get(top, key, kAliases);
  if (!field.ok()) return field.status();
  if (key == "append_row_file_name" && field->node.IsMap()) {
    return InvalidArgument(
        "append_row_file_name: YAML reads a value that starts with '{' as a map; put the "
        "name in quotes, e.g. append_row_file_name: '{name}-{job_id}.txt'");
  }
  absl::StatusOr<std::optional<std::string>> text = ReadScalar(field->node, field->key);
  if (!text.ok()) return text.status();
  return text->value_or("");
}

absl::Status ReadStringKeys(const Fields& top, const fs::path& base, v1::JobSpec& spec) {
  const struct {
    absl::string_view key;
    std::function<void(const std::string&)> set;
  } string_keys[] = {
      {"name", [&](const std::string& v) { spec.set_name(v); }},
      {"entry_script",
       [&](const std::string& v) {
         spec.set_entry_script(fs::path(v).lexically_normal().generic_string());
       }},
      {"source_directory",
       [&](const std::string& v) { spec.set_source_directory(ResolvePath(base, v)); }},
      {"output", [&](const std::string& v) { spec.set_output(ResolvePath(base, v)); }},
      {"output_action",
       [&](const std::string& v) { spec.set_output_action(absl::AsciiStrToLower(v)); }},
      {"append_row_file_name", [&](const std::string& v) { spec.set_append_row_file_name(v); }},
      {"logging_level",
       [&](const std::string& v) { spec.set_logging_level(absl::AsciiStrToUpper(v)); }},
  };
  for (const auto& string_key : string_keys) {
    absl::StatusOr<std::string> value = ReadString(top, string_key.key);
    if (!value.ok()) return value.status();
    if (string_key.key == "source_directory" || string_key.key == "output") {
      PRS_RETURN_IF_ERROR(CheckNotUri(string_key.key, *value));
    }
    if (!value->empty()) string_key.set(*value);
  }
  return absl::OkStatus();
}

absl::Status ReadIntKeys(const Fields& top, v1::JobSpec& spec) {
  for (const IntKey& int_key : kIntKeys) {
    absl::StatusOr<Field> field = Get(top, int_key.key, kAliases);
    if (!field.ok()) return field.status();
    absl::StatusOr<std::optional<int64_t>> value =
        ReadInt(field->node, field->key, int_key.min, int_key.max);
    if (!value.ok()) return value.status();
    if (value->has_value()) int_key.set(spec, **value);
  }
  return absl::OkStatus();
}

absl::Status ReadAllowReuse(const Fields& top, v1::JobSpec& spec) {
  absl::StatusOr<Field> field = Get(top, "allow_reuse", kAliases);
  if (!field.ok()) return field.status();
  absl::StatusOr<std::optional<bool>> value = ReadBool(field->node, field->key);
  if (!value.ok()) return value.status();
  if (value->has_value()) spec.set_allow_reuse(**value);
  return absl::OkStatus();
}

// The node of `key`, unset when the key is absent.
YAML::Node NodeOf(const Fields& top, absl::string_view key) {
  auto it = top.find(key);
  return it == top.end() ? YAML::Node() : it->second;
}

// The steps run in the order of their dependencies (noted below), and the
// first error is the one reported.
absl::StatusOr<v1::JobSpec> Convert(const YAML::Node& root, const fs::path& base) {
  if (!IsUnset(root) && !root.IsMap()) {
    return InvalidArgument(absl::StrCat(
        "the job file must be a map of keys like 'name: predict-digits', got ", Kind(root)));
  }
  absl::StatusOr<Fields> top = ReadMap(root, "", kTopLevelKeys, kOtherTopLevelKeys);
  if (!top.ok()) return top.status();

  v1::JobSpec spec;
  SetDefaults(spec);
  PRS_RETURN_IF_ERROR(ReadStringKeys(*top, base, spec));
  PRS_RETURN_IF_ERROR(ReadIntKeys(*top, spec));
  PRS_RETURN_IF_ERROR(ReadRetrySettings(*top, spec));
  PRS_RETURN_IF_ERROR(ReadAllowReuse(*top, spec));
  PRS_RETURN_IF_ERROR(ReadInputs(NodeOf(*top, "inputs"), base, spec));
  PRS_RETURN_IF_ERROR(ReadSideInputs(NodeOf(*top, "side_inputs"), base, spec));
  // After side_inputs: arguments refer to them.
  PRS_RETURN_IF_ERROR(ReadArguments(NodeOf(*top, "arguments"), spec));
  PRS_RETURN_IF_ERROR(ReadRuntimeOptions(*top, spec));
  PRS_RETURN_IF_ERROR(ReadEnvironment(*top, base, spec));
  // After inputs: the unit and the default depend on the inputs' type.
  absl::StatusOr<std::string> mini_batch_size = ReadString(*top, "mini_batch_size");
  if (!mini_batch_size.ok()) return mini_batch_size.status();
  PRS_RETURN_IF_ERROR(ReadMiniBatchSize(*mini_batch_size, spec));
  PRS_RETURN_IF_ERROR(ReadPartitionKeys(NodeOf(*top, "partition_keys"), spec));
  PRS_RETURN_IF_ERROR(ReadAppendRowFormat(NodeOf(*top, "append_row_format"), spec));
  // After arguments and append_row_format.
  ReadAppendRowDataframeHeader(spec);

  PRS_RETURN_IF_ERROR(ValidateJobSpec(spec, /*check_files=*/false));
  return spec;
}

}  // namespace

bool IsTabular(const v1::JobSpec& spec) {
  return !spec.inputs().empty() && spec.inputs(0).type() == "tabular";
}

absl::StatusOr<v1::JobSpec> LoadJobFile(const std::string& path,
                                        const std::vector<std::string>& overrides) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError(absl::StrCat("job file '", path, "' does not exist"));
  }
  if (error) {
    return InvalidArgument(absl::StrCat("job file '", path, "' cannot be read: ", error.message()));
  }
  if (fs::is_directory(status)) {
    return InvalidArgument(
        absl::StrCat("job file '", path, "' is a folder; give the path of the .yaml file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return InvalidArgument(
        absl::StrCat("job file '", path, "' cannot be opened: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return InvalidArgument(
        absl::StrCat("job file '", path, "' cannot be read: ", std::strerror(errno)));
  }
  const fs::path absolute = fs::absolute(fs::path(path), error);
  if (error) {
    return InvalidArgument(absl::StrCat("job file '", path, "': ", error.message()));
  }
  absl::StatusOr<v1::JobSpec> spec =
      ParseJobYaml(text.str(), absolute.parent_path().string(), overrides);
  // A syntax error names this file, not "job file".
  if (!spec.ok() && absl::StartsWith(spec.status().message(), "job file line ")) {
    return absl::Status(spec.status().code(),
                        absl::StrCat(path, spec.status().message().substr(8)));
  }
  return spec;
}

absl::StatusOr<v1::JobSpec> ParseJobYaml(const std::string& yaml_text, const std::string& base_dir,
                                         const std::vector<std::string>& overrides) {
  absl::StatusOr<fs::path> base = AbsoluteBase(base_dir);
  if (!base.ok()) return base.status();
  absl::StatusOr<YAML::Node> root = ParseYamlValue(yaml_text, "job file");
  if (!root.ok()) return root.status();
  try {
    for (const std::string& override_text : overrides) {
      PRS_RETURN_IF_ERROR(ApplyOverride(*root, override_text));
    }
    return Convert(*root, *base);
  } catch (const YAML::Exception& e) {
    // Conversion avoids throwing accessors; this is a safety net.
    return YamlError("job file", e);
  }
}

}  // namespace prs

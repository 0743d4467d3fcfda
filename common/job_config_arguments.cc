#include "common/job_config_arguments.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/job_yaml.h"
#include "common/text.h"

namespace prs::job_arguments {
namespace {

using job_yaml::Fields;
using job_yaml::InvalidArgument;
using job_yaml::IsUnset;
using job_yaml::Kind;

constexpr absl::string_view kSideInputPrefix = "${side_inputs.";

// ParallelRunStep's runtime options, passed in `arguments`, that prs honours:
// each sets the key of the same name (giving both, with different values, is
// an error). The arguments still reach the script.
struct RuntimeOption {
  absl::string_view name;
  void (*set)(v1::JobSpec&, int32_t);
};
constexpr RuntimeOption kRuntimeOptions[] = {
    {"progress_update_timeout",
     [](v1::JobSpec& s, int32_t v) { s.set_progress_update_timeout(v); }},
    {"first_task_creation_timeout",
     [](v1::JobSpec& s, int32_t v) { s.set_first_task_creation_timeout(v); }},
    {"resource_monitor_interval",
     [](v1::JobSpec& s, int32_t v) { s.set_resource_monitor_interval(v); }},
};

// Replaces each ${side_inputs.NAME} in `argument` with the side input's path.
absl::StatusOr<std::string> SubstituteSideInputs(const std::string& argument,
                                                 absl::string_view where, const v1::JobSpec& spec) {
  std::string result;
  size_t position = 0;
  while (true) {
    const size_t start = absl::string_view(argument).find(kSideInputPrefix, position);
    if (start == absl::string_view::npos) break;
    const size_t name_start = start + kSideInputPrefix.size();
    const size_t end = argument.find('}', name_start);
    if (end == std::string::npos) {
      return InvalidArgument(absl::StrCat(where, ": '", Printable(argument),
                                          "' has no closing '}'; write ${side_inputs.NAME}"));
    }
    const absl::string_view name = absl::string_view(argument).substr(name_start, end - name_start);
    const v1::SideInput* found = nullptr;
    std::vector<std::string> names;
    for (const v1::SideInput& side_input : spec.side_inputs()) {
      if (side_input.name() == name) found = &side_input;
      names.push_back(side_input.name());
    }
    if (found == nullptr) {
      return InvalidArgument(absl::StrCat(
          where, ": '${side_inputs.", name, "}' names no side input; ",
          names.empty() ? std::string("side_inputs is empty")
                        : absl::StrCat("the side inputs are ", absl::StrJoin(names, ", "))));
    }
    absl::StrAppend(&result, absl::string_view(argument).substr(position, start - position),
                    found->path());
    position = end + 1;
  }
  absl::StrAppend(&result, absl::string_view(argument).substr(position));
  return result;
}

// The value of `--name VALUE` or `--name=VALUE` in the arguments (the last
// one), or nullopt.
std::optional<std::string> ArgumentValue(const v1::JobSpec& spec, absl::string_view name) {
  std::optional<std::string> value;
  const auto& args = spec.arguments();
  for (int i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--") || !absl::ConsumePrefix(&arg, name)) continue;
    if (arg.empty() && i + 1 < args.size()) {
      value = args[i + 1];
    } else if (absl::ConsumePrefix(&arg, "=")) {
      value = std::string(arg);
    }
  }
  return value;
}

}  // namespace

absl::Status ReadArguments(const YAML::Node& node, v1::JobSpec& spec) {
  if (IsUnset(node)) return absl::OkStatus();
  if (!node.IsSequence()) {
    return InvalidArgument(absl::StrCat(
        "arguments: must be a list like [--labels_dir, \"${side_inputs.labels}\"], got ",
        Kind(node)));
  }
  size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string where = absl::StrCat("arguments[", i++, "]");
    if (IsUnset(item)) {
      return InvalidArgument(absl::StrCat(where, ": is empty; write \"\" for an empty argument"));
    }
    if (!item.IsScalar()) {
      return InvalidArgument(absl::StrCat(where, ": must be a single value, got ", Kind(item)));
    }
    absl::StatusOr<std::string> argument = SubstituteSideInputs(item.Scalar(), where, spec);
    if (!argument.ok()) return argument.status();
    spec.add_arguments(*std::move(argument));
  }
  return absl::OkStatus();
}

absl::Status ReadRuntimeOptions(const Fields& top, v1::JobSpec& spec) {
  for (const auto& [name, set] : kRuntimeOptions) {
    const std::optional<std::string> text = ArgumentValue(spec, name);
    if (!text) continue;
    int64_t value = 0;
    if (!absl::SimpleAtoi(*text, &value) || value < 0 ||
        value > std::numeric_limits<int32_t>::max()) {
      return InvalidArgument(absl::StrCat("arguments: --", name, " '", Printable(*text),
                                          "' is not a number of seconds"));
    }
    auto key = top.find(name);
    if (key != top.end() && !IsUnset(key->second) && key->second.IsScalar() &&
        key->second.Scalar() != *text) {
      return InvalidArgument(absl::StrCat(name, ": the job file says ",
                                          Printable(key->second.Scalar()), " and arguments say --",
                                          name, " ", Printable(*text), "; set it once"));
    }
    set(spec, static_cast<int32_t>(value));
  }
  return absl::OkStatus();
}

void ReadAppendRowDataframeHeader(v1::JobSpec& spec) {
  if (spec.has_append_row_format() || spec.output_action() != "append_row") return;
  const auto is_false = [](absl::string_view v) {
    for (absl::string_view no : {"false", "no", "off", "n", "0"}) {
      if (absl::EqualsIgnoreCase(v, no)) return true;
    }
    return false;
  };
  const auto& args = spec.arguments();
  bool on = false;
  for (int i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--append_row_dataframe_header")) continue;
    if (arg.empty()) {  // a flag, or a flag and its value
      on = i + 1 >= args.size() || absl::StartsWith(args[i + 1], "-") || !is_false(args[i + 1]);
    } else if (absl::ConsumePrefix(&arg, "=")) {
      on = !is_false(arg);
    }  // else another option that starts with the same name
  }
  if (on) {
    spec.mutable_append_row_format()->set_delimiter("");
    spec.mutable_append_row_format()->set_header(true);
  }
}

}  // namespace prs::job_arguments

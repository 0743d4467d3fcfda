// Reading the job file's YAML: maps with known keys (an unknown key gets a
// did-you-mean suggestion), typed scalars, other names for keys, paths,
// `--set` overrides, and the INVALID_ARGUMENT messages for each.
//
// Internal to common/: job_config.cc builds a v1::JobSpec with it and
// job_spec_checks.cc reuses its messages. Code outside common/ includes
// common/job_config.h instead.
//
// All functions are thread-safe (no shared state). They avoid yaml-cpp's
// throwing accessors; ParseYamlValue and ApplyOverride catch its parse errors.
// Messages name the key as the user wrote it (`key` or `where` arguments) and
// the fix.
#ifndef PRS_COMMON_JOB_YAML_H_
#define PRS_COMMON_JOB_YAML_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace prs::job_yaml {

// The keys of one YAML map, as written.
using Fields = std::map<std::string, YAML::Node, std::less<>>;

// A value looked up in Fields, with the key as the user spelled it (an alias
// or the primary name) so messages quote what is in the file.
struct Field {
  YAML::Node node;
  std::string key;
};

// Another name for a key (the v2 parallel job's names).
struct Alias {
  absl::string_view key;
  absl::string_view alias;
};

// INVALID_ARGUMENT with `message`.
absl::Status InvalidArgument(absl::string_view message);

// "missing required key 'KEY': MEANING".
absl::Status MissingKey(absl::string_view key, absl::string_view meaning);

// A yaml-cpp exception as "WHAT line L, column C: ..." (or "WHAT: ..." without
// a position), with a hint on YAML syntax for parser errors.
absl::Status YamlError(absl::string_view what, const YAML::Exception& e);

// Absent and explicitly null values (`key:` or `key: ~`) mean "not set".
bool IsUnset(const YAML::Node& node);

// What a node holds, for messages: "nothing", "a list", "a map" or the
// quoted scalar.
std::string Kind(const YAML::Node& node);

// The Levenshtein distance between `a` and `b`.
size_t EditDistance(absl::string_view a, absl::string_view b);

// Returns the known key `key` was most likely meant to be, or "" if none
// looks close: a few edits away, or a longer or shorter form of it
// ("process_count" for "process_count_per_node"). Case-insensitive.
absl::string_view NearestKey(absl::string_view key, absl::Span<const absl::string_view> known);

// "unknown key 'KEY'; did you mean 'NEAREST'?", or the list of known keys when
// nothing is close. `where` prefixes the message ("" for the top level).
// `listed` are the keys to list when nothing is close; `also_known` are
// accepted and may be suggested, but are not listed.
absl::Status UnknownKey(absl::string_view where, absl::string_view key,
                        absl::Span<const absl::string_view> listed,
                        absl::Span<const absl::string_view> also_known);

// Reads a YAML map into Fields. An unset node is an empty map. With `known`
// non-empty, any other key (not in `known` or `also_known`) is an error, as
// are a key given twice and a key that is not a plain name. `where` names the
// map in messages ("" for the top level).
absl::StatusOr<Fields> ReadMap(const YAML::Node& node, absl::string_view where,
                               absl::Span<const absl::string_view> known,
                               absl::Span<const absl::string_view> also_known = {});

// Looks `key` up, also under its other names in `aliases` (entries whose key
// is `key`). Giving both spellings is an error. An absent key is an unset
// node under `key`.
absl::StatusOr<Field> Get(const Fields& fields, absl::string_view key,
                          absl::Span<const Alias> aliases);

// The text of a scalar, or nullopt when unset. A list or a map is an error
// naming `key`.
absl::StatusOr<std::optional<std::string>> ReadScalar(const YAML::Node& node,
                                                      absl::string_view key);

// The text of `key` in `fields`, named "WHERE.KEY" in messages, or "" when it
// is absent or unset.
absl::StatusOr<std::string> ReadMapText(const Fields& fields, absl::string_view where,
                                        absl::string_view key);

// An integer in min..max, or nullopt when unset.
absl::StatusOr<std::optional<int64_t>> ReadInt(const YAML::Node& node, absl::string_view key,
                                               int64_t min, int64_t max);

// A YAML boolean (true/false, yes/no, on/off, ...), or nullopt when unset.
absl::StatusOr<std::optional<bool>> ReadBool(const YAML::Node& node, absl::string_view key);

// Makes `text` an absolute, normalized path without a trailing '/': "~/" is
// the home folder, other relative paths are relative to `base`.
std::string ResolvePath(const std::filesystem::path& base, absl::string_view text);

// "scheme://...": a URI (azureml://, s3://, https://), not a path.
bool LooksLikeUri(absl::string_view text);

// An error naming `key` when `text` is a URI: those are not supported yet.
absl::Status CheckNotUri(absl::string_view key, absl::string_view text);

// ResolvePath for a path the user wrote under `key`: a URI is refused.
absl::StatusOr<std::string> ResolveUserPath(const std::filesystem::path& base,
                                            absl::string_view key, absl::string_view text);

// `base_dir` made absolute against the current directory and normalized
// ("" is the current directory).
absl::StatusOr<std::filesystem::path> AbsoluteBase(const std::string& base_dir);

// Parses `text` as one YAML document (none is an unset node). `what` names
// the text in messages ("job file").
absl::StatusOr<YAML::Node> ParseYamlValue(const std::string& text, absl::string_view what);

// Applies one `--set key=value` to the YAML tree: see ParseJobYaml in
// common/job_config.h for the syntax. Messages start "--set 'TEXT': ".
absl::Status ApplyOverride(YAML::Node& root, const std::string& text);

// The items of a key that takes one value or a list of them; nullopt for a map.
std::optional<std::vector<YAML::Node>> OneOrList(const YAML::Node& node);

}  // namespace prs::job_yaml

#endif  // PRS_COMMON_JOB_YAML_H_

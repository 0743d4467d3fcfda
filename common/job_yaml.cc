#include "common/job_yaml.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "common/text.h"

namespace prs::job_yaml {

namespace fs = std::filesystem;

absl::Status InvalidArgument(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status MissingKey(absl::string_view key, absl::string_view meaning) {
  return InvalidArgument(absl::StrCat("missing required key '", key, "': ", meaning));
}

absl::Status YamlError(absl::string_view what, const YAML::Exception& e) {
  std::string msg = e.msg;
  if (dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr) {
    // yaml-cpp says "bad file".
    msg =
        "the YAML is nested too deeply; a job file is a map of keys whose values are at most "
        "a few levels deep";
  } else if (dynamic_cast<const YAML::ParserException*>(&e) != nullptr) {
    msg +=
        " (YAML syntax: check the indentation there, and put quotes around a value that "
        "holds ': ' or ' #', or starts with one of {[&*!|>'\"%@`)";
  }
  if (e.mark.is_null()) return InvalidArgument(absl::StrCat(what, ": ", Printable(msg)));
  return InvalidArgument(absl::StrCat(what, " line ", e.mark.line + 1, ", column ",
                                      e.mark.column + 1, ": ", Printable(msg)));
}

bool IsUnset(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }

std::string Kind(const YAML::Node& node) {
  if (IsUnset(node)) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return absl::StrCat("'", Printable(node.Scalar()), "'");
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

absl::string_view NearestKey(absl::string_view key, absl::Span<const absl::string_view> known) {
  const std::string lower = absl::AsciiStrToLower(key);
  absl::string_view nearest;
  size_t nearest_distance = std::numeric_limits<size_t>::max();
  for (absl::string_view candidate : known) {
    const size_t distance = EditDistance(lower, candidate);
    if (distance < nearest_distance) {
      nearest = candidate;
      nearest_distance = distance;
    }
  }
  if (!nearest.empty() && nearest_distance <= std::max<size_t>(2, key.size() / 3)) return nearest;
  if (lower.size() >= 4) {
    for (absl::string_view candidate : known) {
      if (absl::StrContains(candidate, lower) || absl::StrContains(lower, candidate)) {
        return candidate;
      }
    }
  }
  return "";
}

absl::Status UnknownKey(absl::string_view where, absl::string_view key,
                        absl::Span<const absl::string_view> listed,
                        absl::Span<const absl::string_view> also_known) {
  const std::string prefix = where.empty() ? "" : absl::StrCat(where, ": ");
  absl::string_view nearest = NearestKey(key, listed);
  if (nearest.empty()) nearest = NearestKey(key, also_known);
  if (!nearest.empty()) {
    return InvalidArgument(
        absl::StrCat(prefix, "unknown key '", Printable(key), "'; did you mean '", nearest, "'?"));
  }
  return InvalidArgument(absl::StrCat(prefix, "unknown key '", Printable(key),
                                      "'; the known keys are ", absl::StrJoin(listed, ", ")));
}

absl::StatusOr<Fields> ReadMap(const YAML::Node& node, absl::string_view where,
                               absl::Span<const absl::string_view> known,
                               absl::Span<const absl::string_view> also_known) {
  Fields fields;
  if (IsUnset(node)) return fields;
  if (!node.IsMap()) {
    return InvalidArgument(absl::StrCat(where, ": must be a map of keys, got ", Kind(node)));
  }
  const std::string prefix = where.empty() ? "" : absl::StrCat(where, ": ");
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      return InvalidArgument(
          absl::StrCat(prefix, "keys must be plain names, got ", Kind(entry.first)));
    }
    const std::string& key = entry.first.Scalar();
    if (!known.empty() && std::find(known.begin(), known.end(), key) == known.end() &&
        std::find(also_known.begin(), also_known.end(), key) == also_known.end()) {
      return UnknownKey(where, key, known, also_known);
    }
    if (!fields.emplace(key, entry.second).second) {
      return InvalidArgument(absl::StrCat(prefix, "key '", key, "' is given twice; keep one"));
    }
  }
  return fields;
}

absl::StatusOr<Field> Get(const Fields& fields, absl::string_view key,
                          absl::Span<const Alias> aliases) {
  Field field{YAML::Node(), std::string(key)};
  if (auto it = fields.find(key); it != fields.end()) field.node = it->second;
  for (const Alias& alias : aliases) {
    if (alias.key != key) continue;
    auto it = fields.find(alias.alias);
    if (it == fields.end() || IsUnset(it->second)) continue;
    if (!IsUnset(field.node)) {
      return InvalidArgument(
          absl::StrCat(key, " and ", alias.alias, " are the same setting; keep one of them"));
    }
    field = Field{it->second, std::string(alias.alias)};
  }
  return field;
}

absl::StatusOr<std::optional<std::string>> ReadScalar(const YAML::Node& node,
                                                      absl::string_view key) {
  if (IsUnset(node)) return std::nullopt;
  if (!node.IsScalar()) {
    return InvalidArgument(absl::StrCat(key, ": must be a single value, got ", Kind(node)));
  }
  return node.Scalar();
}

absl::StatusOr<std::string> ReadMapText(const Fields& fields, absl::string_view where,
                                        absl::string_view key) {
  auto it = fields.find(key);
  if (it == fields.end()) return std::string();
  absl::StatusOr<std::optional<std::string>> text =
      ReadScalar(it->second, absl::StrCat(where, ".", key));
  if (!text.ok()) return text.status();
  return text->value_or("");
}

absl::StatusOr<std::optional<int64_t>> ReadInt(const YAML::Node& node, absl::string_view key,
                                               int64_t min, int64_t max) {
  absl::StatusOr<std::optional<std::string>> text = ReadScalar(node, key);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::nullopt;
  absl::string_view digits = absl::StripAsciiWhitespace(**text);
  int64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value)) {
    if (!absl::ConsumePrefix(&digits, "-")) absl::ConsumePrefix(&digits, "+");
    const bool all_digits =
        !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        });
    if (all_digits) {
      return InvalidArgument(absl::StrCat(key, ": ", Printable(**text), " is out of range"));
    }
    return InvalidArgument(absl::StrCat(key, ": '", Printable(**text), "' is not an integer"));
  }
  if (value < min || value > max) {
    return InvalidArgument(
        absl::StrCat(key, ": ", value, " is out of range (", min, " to ", max, ")"));
  }
  return value;
}

absl::StatusOr<std::optional<bool>> ReadBool(const YAML::Node& node, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> text = ReadScalar(node, key);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::nullopt;
  bool value = false;
  if (!YAML::convert<bool>::decode(node, value)) {
    return InvalidArgument(
        absl::StrCat(key, ": '", Printable(**text), "' is not a boolean; use true or false"));
  }
  return value;
}

std::string ResolvePath(const fs::path& base, absl::string_view text) {
  fs::path path(std::string{text});
  if (text == "~" || absl::StartsWith(text, "~/")) {
    const char* home = std::getenv("HOME");
    if (home != nullptr && *home != '\0') {
      path = fs::path(home) / std::string(text.substr(std::min<size_t>(2, text.size())));
    }
  }
  if (path.is_relative()) path = base / path;
  std::string resolved = path.lexically_normal().string();
  while (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
  return resolved;
}

bool LooksLikeUri(absl::string_view text) {
  const size_t colon = text.find("://");
  if (colon == absl::string_view::npos || colon == 0) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(text[0]))) return false;
  return std::all_of(text.begin(), text.begin() + colon, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

absl::Status CheckNotUri(absl::string_view key, absl::string_view text) {
  if (!LooksLikeUri(text)) return absl::OkStatus();
  return InvalidArgument(absl::StrCat(
      key, ": '", Printable(text),
      "' is a URI; URIs are not supported yet: use a path the master and agents can read (a "
      "shared filesystem, or a datastore mounted on every node)"));
}

absl::StatusOr<std::string> ResolveUserPath(const fs::path& base, absl::string_view key,
                                            absl::string_view text) {
  if (auto s = CheckNotUri(key, text); !s.ok()) return s;
  return ResolvePath(base, text);
}

absl::StatusOr<fs::path> AbsoluteBase(const std::string& base_dir) {
  std::error_code error;
  const fs::path base = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir), error);
  if (error) {
    return InvalidArgument(absl::StrCat("cannot make the job file's folder '", base_dir,
                                        "' absolute: ", error.message()));
  }
  return base.lexically_normal();
}

namespace {

// Notes where each document starts, and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start = YAML::Mark::null_mark();
};

// The number of documents in `text`; throws YAML::Exception as YAML::LoadAll
// does. Not LoadAll itself: on a token the parser cannot consume (a job file
// holding just ",") yaml-cpp 0.7 reports an empty document there forever, and
// LoadAll collects them until the process runs out of memory (yaml-cpp issue
// #1040, fixed after 0.8.0). A document that starts where the one before it
// did is that case, a syntax error.
size_t CountDocuments(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts handler;
  size_t documents = 0;
  YAML::Mark previous = YAML::Mark::null_mark();
  while (parser.HandleNextDocument(handler)) {
    if (documents > 0 && handler.start.pos == previous.pos) {
      const auto at = static_cast<size_t>(handler.start.pos);
      const absl::string_view token = at < text.size() ? absl::string_view(text).substr(at, 1) : "";
      throw YAML::ParserException(handler.start,
                                  absl::StrCat("unexpected '", Printable(token), "'"));
    }
    previous = handler.start;
    ++documents;
  }
  return documents;
}

}  // namespace

absl::StatusOr<YAML::Node> ParseYamlValue(const std::string& text, absl::string_view what) {
  try {
    const size_t documents = CountDocuments(text);
    if (documents > 1) {
      return InvalidArgument(
          absl::StrCat(what, " holds ", documents, " YAML documents (separated by ---); keep one"));
    }
    if (documents == 0) return YAML::Node();
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return YamlError(what, e);
  }
}

namespace {

absl::Status BadOverride(absl::string_view text, absl::string_view why) {
  return InvalidArgument(absl::StrCat("--set '", text, "': ", why));
}

// The dotted key of `--set KEY=value` (before `equals`), split into its parts.
absl::StatusOr<std::vector<std::string>> OverrideKeyParts(const std::string& text, size_t equals) {
  const absl::string_view key =
      absl::StripAsciiWhitespace(absl::string_view(text).substr(0, equals));
  std::vector<std::string> parts = absl::StrSplit(key, '.');
  if (key.empty() || std::any_of(parts.begin(), parts.end(),
                                 [](const std::string& part) { return part.empty(); })) {
    return BadOverride(text,
                       "the key has an empty part; write it like node_count or environment.python");
  }
  // Variable names may hold dots: everything after "environment.variables."
  // is one name.
  if (parts.size() > 3 && parts[0] == "environment" && parts[1] == "variables") {
    parts[2] = absl::StrJoin(parts.begin() + 2, parts.end(), ".");
    parts.resize(3);
  }
  return parts;
}

// The value of `--set key=VALUE` (after `equals`), parsed as YAML.
absl::StatusOr<YAML::Node> OverrideValue(const std::string& text, size_t equals) {
  try {
    return YAML::Load(text.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    return BadOverride(text, absl::StrCat("the value is not valid YAML (", e.msg,
                                          "); put it in quotes, e.g. key='\"value\"'"));
  }
}

// Sets `value` at the dotted path `parts` under the map `root`, indexing
// lists by number and making maps of unset nodes on the way. `text` is the
// override, for messages.
absl::Status SetAtPath(YAML::Node& root, const std::vector<std::string>& parts,
                       const YAML::Node& value, const std::string& text) {
  // Node copies share identity with the tree: `current` walks down it with
  // reset(), and assignments through it change the tree in place.
  YAML::Node current = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const std::string parent =
        i == 0 ? std::string("the job file")
               : absl::StrCat("'", absl::StrJoin(parts.begin(), parts.begin() + i, "."), "'");
    if (current.IsDefined() && current.IsSequence()) {
      size_t index = 0;
      if (!absl::SimpleAtoi(parts[i], &index) || index >= current.size()) {
        return BadOverride(
            text, absl::StrCat(parent, " is a list of ", current.size(), " items; '", parts[i],
                               "' is not an index of it (they start at 0)"));
      }
      if (last) {
        current[index] = value;
      } else {
        YAML::Node next = current[index];
        current.reset(next);
      }
      continue;
    }
    if (IsUnset(current)) current = YAML::Node(YAML::NodeType::Map);
    if (!current.IsMap()) {
      return BadOverride(text, absl::StrCat(parent, " holds a single value, not keys"));
    }
    if (last) {
      current[parts[i]] = value;
    } else {
      YAML::Node next = current[parts[i]];
      current.reset(next);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyOverride(YAML::Node& root, const std::string& text) {
  const size_t equals = text.find('=');
  if (equals == std::string::npos) {
    return BadOverride(
        text, "expected key=value, e.g. node_count=4 or environment.variables.OMP_NUM_THREADS=1");
  }
  absl::StatusOr<std::vector<std::string>> parts = OverrideKeyParts(text, equals);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<YAML::Node> value = OverrideValue(text, equals);
  if (!value.ok()) return value.status();
  if (IsUnset(root)) root = YAML::Node(YAML::NodeType::Map);
  return SetAtPath(root, *parts, *value, text);
}

std::optional<std::vector<YAML::Node>> OneOrList(const YAML::Node& node) {
  std::vector<YAML::Node> items;
  if (node.IsScalar()) {
    items.push_back(node);
  } else if (node.IsSequence()) {
    for (const YAML::Node& item : node) items.push_back(item);
  } else {
    return std::nullopt;
  }
  return items;
}

}  // namespace prs::job_yaml

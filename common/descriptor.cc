#include "common/descriptor.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace prs {
namespace {

// "OFFSET" or "OFFSET@RECORD".
struct Position {
  int64_t offset = 0;
  int64_t record = -1;
};

bool ParsePosition(absl::string_view text, Position* p) {
  std::pair<absl::string_view, absl::string_view> v = absl::StrSplit(text, absl::MaxSplits('@', 1));
  if (!absl::SimpleAtoi(v.first, &p->offset)) return false;
  return v.second.empty() || absl::SimpleAtoi(v.second, &p->record);
}

}  // namespace

std::string DescribeItem(absl::string_view item) {
  std::vector<absl::string_view> f = absl::StrSplit(item, absl::MaxSplits('\t', 4));
  if (f.size() != 5) return std::string(item);  // a file path
  const absl::string_view path = f[4];
  if (f[0] == "range") {
    Position start, end;
    if (!ParsePosition(f[2], &start) || !ParsePosition(f[3], &end)) return std::string(item);
    if (end.offset < 0) return absl::StrCat(path, " (the whole file)");
    std::string text = absl::StrCat(path, ", bytes ", start.offset, "-", end.offset);
    if (start.record >= 0 && end.record > start.record) {
      absl::StrAppend(&text, " (records ", start.record + 1, "-", end.record, ")");
    }
    return text;
  }
  if (f[0] == "group") {
    // keys_json and values_json: ["a","b"] and ["1","x"].
    const auto strings = [](absl::string_view json) {
      json = absl::StripPrefix(absl::StripSuffix(json, "]"), "[");
      std::vector<std::string> out;
      for (absl::string_view s : absl::StrSplit(json, "\",\"")) {
        out.emplace_back(absl::StripPrefix(absl::StripSuffix(s, "\""), "\""));
      }
      return out;
    };
    const std::vector<std::string> keys = strings(f[2]), values = strings(f[3]);
    std::string text = absl::StrCat(path, ", the rows where ");
    for (size_t i = 0; i < keys.size() && i < values.size(); ++i) {
      absl::StrAppend(&text, i ? ", " : "", keys[i], "=", values[i]);
    }
    return text;
  }
  if (f[0] == "plan") {
    const size_t at = f[3].find('@');
    Position begin;
    if (at != absl::string_view::npos) ParsePosition(f[3].substr(at + 1), &begin);
    return absl::StrCat(path, ", planning its mini-batches",
                        begin.offset > 0 ? absl::StrCat(" from byte ", begin.offset) : "");
  }
  return std::string(item);
}

}  // namespace prs

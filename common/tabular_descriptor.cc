#include "common/tabular_descriptor.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace prs {
namespace {

constexpr const char* kShapes =
    "expected range<TAB>fmt<TAB>start[@record]<TAB>end[@record]<TAB>path, "
    "group<TAB>fmt<TAB>keys_json<TAB>values_json<TAB>path or "
    "plan<TAB>bytes|rows|keys<TAB>fmt<TAB>size[@begin[@records]]|keys_json<TAB>path";

absl::Status Malformed(absl::string_view item, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed tabular descriptor '", item, "': ", why));
}

std::string FormatField(const std::string& format, const std::optional<TabularStamp>& stamp) {
  if (!stamp) return format;
  return absl::StrCat(format, ":", stamp->size, ":", stamp->mtime_ns);
}

// "OFFSET" or "OFFSET@RECORD".
std::string PositionField(const TabularPosition& p) {
  return p.record < 0 ? absl::StrCat(p.offset) : absl::StrCat(p.offset, "@", p.record);
}

bool ParsePosition(absl::string_view text, TabularPosition* p) {
  std::pair<absl::string_view, absl::string_view> v = absl::StrSplit(text, absl::MaxSplits('@', 1));
  p->record = -1;
  if (!absl::SimpleAtoi(v.first, &p->offset)) return false;
  return !absl::StrContains(text, '@') ||
         (absl::SimpleAtoi(v.second, &p->record) && p->record >= 0);
}

// "csv" or "csv:SIZE:MTIME_NS".
bool ParseFormat(absl::string_view text, std::string* format, std::optional<TabularStamp>* stamp) {
  std::vector<absl::string_view> v = absl::StrSplit(text, ':');
  *format = std::string(v[0]);
  if (*format != "csv" && *format != "tsv" && *format != "jsonl") return false;
  if (v.size() == 1) return true;
  TabularStamp s;
  if (v.size() != 3 || !absl::SimpleAtoi(v[1], &s.size) || !absl::SimpleAtoi(v[2], &s.mtime_ns) ||
      s.size < 0) {
    return false;
  }
  *stamp = s;
  return true;
}

bool IsJsonList(absl::string_view text) {
  return text.size() >= 2 && text.front() == '[' && text.back() == ']';
}

absl::StatusOr<TabularDescriptor> DecodePlan(absl::string_view item,
                                             const std::vector<absl::string_view>& f) {
  PlanDescriptor d;
  d.unit = std::string(f[1]);
  if (!ParseFormat(f[2], &d.format, &d.stamp)) return Malformed(item, "bad format field");
  d.path = std::string(f[4]);
  if (d.unit == "keys") {
    if (!IsJsonList(f[3])) return Malformed(item, "keys_json must be a JSON list");
    d.keys_json = std::string(f[3]);
    return d;
  }
  if (d.unit != "bytes" && d.unit != "rows") {
    return Malformed(item, "unknown plan unit (expected bytes, rows or keys)");
  }
  std::vector<absl::string_view> arg = absl::StrSplit(f[3], absl::MaxSplits('@', 2));
  if (!absl::SimpleAtoi(arg[0], &d.size) || d.size < 1) {
    return Malformed(item, "the plan's size must be an integer >= 1");
  }
  if (arg.size() >= 2) {
    if (!absl::SimpleAtoi(arg[1], &d.begin.offset) || d.begin.offset < 0) {
      return Malformed(item, "bad begin offset");
    }
    // The records before it are for reports only: a count that is missing or
    // unreadable (a plan made by an older master) is unknown, not an error.
    d.begin.record = -1;
    if (arg.size() == 3 && (!absl::SimpleAtoi(arg[2], &d.begin.record) || d.begin.record < 0)) {
      d.begin.record = -1;
    }
  }
  return d;
}

}  // namespace

std::string EncodeDescriptor(const TabularDescriptor& descriptor) {
  if (const auto* r = std::get_if<RangeDescriptor>(&descriptor)) {
    return absl::StrCat("range\t", FormatField(r->format, r->stamp), "\t", PositionField(r->start),
                        "\t", PositionField(r->end), "\t", r->path);
  }
  if (const auto* g = std::get_if<GroupDescriptor>(&descriptor)) {
    return absl::StrCat("group\t", FormatField(g->format, g->stamp), "\t", g->keys_json, "\t",
                        g->values_json, "\t", g->path);
  }
  const auto& p = std::get<PlanDescriptor>(descriptor);
  std::string arg;
  if (p.unit == "keys") {
    arg = p.keys_json;
  } else {
    arg = absl::StrCat(p.size);
    // Left out only when decoding "SIZE" gives it back: {0, 0}. A begin at
    // offset 0 with another record count ("SIZE@0", unknown) is kept.
    if (p.begin != TabularPosition{0, 0}) absl::StrAppend(&arg, "@", PositionField(p.begin));
  }
  return absl::StrCat("plan\t", p.unit, "\t", FormatField(p.format, p.stamp), "\t", arg, "\t",
                      p.path);
}

absl::StatusOr<TabularDescriptor> DecodeDescriptor(absl::string_view item) {
  // The path comes last and may hold tabs.
  std::vector<absl::string_view> f = absl::StrSplit(item, absl::MaxSplits('\t', 4));
  if (f.size() != 5 || f[4].empty()) return Malformed(item, kShapes);
  if (f[0] == "range") {
    RangeDescriptor d;
    if (!ParseFormat(f[1], &d.format, &d.stamp)) return Malformed(item, "bad format field");
    if (!ParsePosition(f[2], &d.start) || d.start.offset < 0 || !ParsePosition(f[3], &d.end) ||
        d.end.offset < -1) {
      return Malformed(item, "bad start or end");
    }
    d.path = std::string(f[4]);
    return d;
  }
  if (f[0] == "group") {
    GroupDescriptor d;
    if (!ParseFormat(f[1], &d.format, &d.stamp)) return Malformed(item, "bad format field");
    if (!IsJsonList(f[2]) || !IsJsonList(f[3])) {
      return Malformed(item, "keys_json and values_json must be JSON lists");
    }
    d.keys_json = std::string(f[2]);
    d.values_json = std::string(f[3]);
    d.path = std::string(f[4]);
    return d;
  }
  if (f[0] == "plan") return DecodePlan(item, f);
  return Malformed(item, kShapes);
}

namespace {

// ["a","b"] as its strings, for a person (values are JSON-escaped there).
std::vector<std::string> JsonStrings(absl::string_view json) {
  json = absl::StripPrefix(absl::StripSuffix(json, "]"), "[");
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(json, "\",\"")) {
    out.emplace_back(absl::StripPrefix(absl::StripSuffix(s, "\""), "\""));
  }
  return out;
}

}  // namespace

std::string DescribeItem(absl::string_view item) {
  auto decoded = DecodeDescriptor(item);
  if (!decoded.ok()) return std::string(item);  // a file path
  if (const auto* r = std::get_if<RangeDescriptor>(&*decoded)) {
    if (r->end.offset < 0) return absl::StrCat(r->path, " (the whole file)");
    std::string text = absl::StrCat(r->path, ", bytes ", r->start.offset, "-", r->end.offset);
    if (r->start.record >= 0 && r->end.record > r->start.record) {
      absl::StrAppend(&text, " (records ", r->start.record + 1, "-", r->end.record, ")");
    }
    return text;
  }
  if (const auto* g = std::get_if<GroupDescriptor>(&*decoded)) {
    const std::vector<std::string> keys = JsonStrings(g->keys_json);
    const std::vector<std::string> values = JsonStrings(g->values_json);
    std::string text = absl::StrCat(g->path, ", the rows where ");
    for (size_t i = 0; i < keys.size() && i < values.size(); ++i) {
      absl::StrAppend(&text, i ? ", " : "", keys[i], "=", values[i]);
    }
    return text;
  }
  const auto& p = std::get<PlanDescriptor>(*decoded);
  return absl::StrCat(p.path, ", planning its mini-batches",
                      p.begin.offset > 0 ? absl::StrCat(" from byte ", p.begin.offset) : "");
}

}  // namespace prs

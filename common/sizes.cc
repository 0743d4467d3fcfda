#include "common/sizes.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/text.h"

namespace prs {
namespace {

constexpr size_t kMinJobNameLength = 3;
constexpr size_t kMaxJobNameLength = 32;
constexpr absl::string_view kJobNameRule =
    "use 3-32 characters: lowercase letters, digits and '-', starting with a letter and not "
    "ending with '-', e.g. predict-digits";

constexpr absl::string_view kMiniBatchSizeHint = "use a count like 10 or a size like 1MB";

// The characters ParallelRunStep refuses in append_row_file_name.
constexpr absl::string_view kForbiddenFileNameChars = "~\"#%&*:<>?/\\{|}";

bool IsAllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status NotASize(absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("mini_batch_size: '", Printable(text), "' is not a size; ", kMiniBatchSizeHint));
}

// Parses a run of decimal digits into a positive int64. `text` is the whole
// value as written, for messages.
absl::StatusOr<int64_t> ParsePositive(absl::string_view digits, absl::string_view text) {
  int64_t value = 0;
  // The caller has checked that `digits` is all digits, so a failure here
  // can only be an overflow.
  if (!absl::SimpleAtoi(digits, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("mini_batch_size: '", Printable(text),
                                                   "' is too large; ", kMiniBatchSizeHint));
  }
  if (value <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("mini_batch_size: must be positive, got '",
                                                   Printable(text), "'; ", kMiniBatchSizeHint));
  }
  return value;
}

}  // namespace

absl::Status ValidateJobName(absl::string_view name) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: '", Printable(name), "' is not a valid job name (", why, "); ", kJobNameRule));
  };
  for (size_t i = 0; i < name.size();) {
    const auto u = static_cast<unsigned char>(name[i]);
    if (u < 0x80) {
      ++i;
      continue;
    }
    // A whole character, not its first byte.
    const size_t n = std::max<size_t>(1, Utf8CharLength(name.substr(i)));
    return invalid(absl::StrCat("it contains '", Printable(name.substr(i, n)), "'"));
  }
  if (name.size() < kMinJobNameLength) {
    return invalid(absl::StrCat("too short: ", name.size(), " characters"));
  }
  if (name.size() > kMaxJobNameLength) {
    return invalid(absl::StrCat("too long: ", name.size(), " characters"));
  }
  if (!absl::ascii_islower(static_cast<unsigned char>(name.front()))) {
    return invalid("it must start with a lowercase letter");
  }
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (!absl::ascii_islower(u) && !absl::ascii_isdigit(u) && c != '-') {
      if (absl::ascii_isupper(u)) return invalid("it contains uppercase letters");
      return invalid(absl::StrCat("it contains '", Printable(absl::string_view(&c, 1)), "'"));
    }
  }
  if (name.back() == '-') return invalid("it must not end with '-'");
  return absl::OkStatus();
}

absl::StatusOr<MiniBatchSize> ParseMiniBatchSize(absl::string_view text) {
  const absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mini_batch_size: is empty; ", kMiniBatchSizeHint));
  }
  if (value.front() == '-' && IsAllDigits(value.substr(1))) {
    return absl::InvalidArgumentError(absl::StrCat("mini_batch_size: must be positive, got '",
                                                   Printable(value), "'; ", kMiniBatchSizeHint));
  }

  // "5000 rows" / "1 row" / "5000rows".
  const std::string lower = absl::AsciiStrToLower(value);
  for (absl::string_view suffix : {"rows", "row"}) {
    if (absl::EndsWith(lower, suffix)) {
      const absl::string_view number =
          absl::StripAsciiWhitespace(value.substr(0, value.size() - suffix.size()));
      if (!IsAllDigits(number)) return NotASize(value);
      absl::StatusOr<int64_t> rows = ParsePositive(number, value);
      if (!rows.ok()) return rows.status();
      return MiniBatchSize{MiniBatchSize::kRows, *rows};
    }
  }

  size_t digits_end = 0;
  while (digits_end < value.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(value[digits_end]))) {
    ++digits_end;
  }
  if (digits_end == 0) return NotASize(value);
  const absl::string_view digits = value.substr(0, digits_end);
  const std::string unit = absl::AsciiStrToLower(value.substr(digits_end));

  int64_t multiplier = 0;
  if (unit.empty()) {
    multiplier = 0;  // A plain count.
  } else if (unit == "kb") {
    multiplier = int64_t{1} << 10;
  } else if (unit == "mb") {
    multiplier = int64_t{1} << 20;
  } else if (unit == "gb") {
    multiplier = int64_t{1} << 30;
  } else {
    return NotASize(value);
  }

  absl::StatusOr<int64_t> number = ParsePositive(digits, value);
  if (!number.ok()) return number.status();
  if (multiplier == 0) return MiniBatchSize{MiniBatchSize::kCount, *number};
  if (*number > std::numeric_limits<int64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat("mini_batch_size: '", Printable(value),
                                                   "' is too large; ", kMiniBatchSizeHint));
  }
  return MiniBatchSize{MiniBatchSize::kBytes, *number * multiplier};
}

absl::Status ValidateFileName(absl::string_view name) {
  const std::string rule =
      absl::StrCat("append_row_file_name must be a plain file name without any of ",
                   kForbiddenFileNameChars, ", e.g. parallel_run_step.txt");
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("append_row_file_name: is empty; ", rule));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("append_row_file_name: '", Printable(name), "' is not a file name; ", rule));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '{') {
      // The only braces: a placeholder the master fills in at submit.
      const absl::string_view rest = name.substr(i);
      for (absl::string_view placeholder : {"{job_id}", "{name}"}) {
        if (absl::StartsWith(rest, placeholder)) {
          i += placeholder.size() - 1;
          break;
        }
      }
      if (name[i] != '{') continue;
    }
    if (kForbiddenFileNameChars.find(c) != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "append_row_file_name: '", Printable(name), "' contains '", absl::string_view(&c, 1),
          "'; ", rule,
          c == '{' || c == '}' ? " ({job_id} and {name} are the placeholders it may hold)" : ""));
    }
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("append_row_file_name: '", Printable(name),
                                                     "' contains a control character; ", rule));
    }
  }
  return absl::OkStatus();
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes < 0 ? 0 : bytes, " B");
  constexpr const char* kUnits[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit + 1 < static_cast<int>(std::size(kUnits))) {
    value /= 1024.0;
    ++unit;
  }
  // Whole numbers read better without ".0" ("64 MB", not "64.0 MB").
  std::string formatted = absl::StrFormat("%.1f", value);
  if (absl::EndsWith(formatted, ".0")) formatted.resize(formatted.size() - 2);
  return absl::StrCat(formatted, " ", kUnits[unit]);
}

std::pair<std::string, std::string> FormatSizeAndLimit(int64_t size, int64_t limit) {
  std::string a = FormatBytes(size), b = FormatBytes(limit);
  if (a == b) {
    a = absl::StrCat(size, " bytes");
    b = absl::StrCat(limit, " bytes");
  }
  return {a, b};
}

}  // namespace prs

#include "common/text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace prs {

size_t Utf8CharLength(absl::string_view text) {
  if (text.empty()) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < n) return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

bool IsValidUtf8(absl::string_view text) {
  while (!text.empty()) {
    const size_t n = Utf8CharLength(text);
    if (n == 0) return false;
    text.remove_prefix(n);
  }
  return true;
}

namespace {

std::string Escape(absl::string_view text, bool controls, size_t max_chars,
                   bool keep_lines = false) {
  std::string out;
  out.reserve(std::min(text.size(), max_chars) + 8);
  const size_t total = text.size();
  while (!text.empty()) {
    if (out.size() >= max_chars) {
      absl::StrAppend(&out, "...(", total, " bytes)");
      break;
    }
    const size_t n = Utf8CharLength(text);
    const unsigned char c = static_cast<unsigned char>(text[0]);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
      text.remove_prefix(1);
      continue;
    }
    if (keep_lines && (c == '\n' || c == '\t')) {
      out += static_cast<char>(c);
    } else if (controls && n == 1 && (c < 0x20 || c == 0x7F)) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          absl::StrAppendFormat(&out, "\\x%02x", c);
      }
    } else if (controls && n == 2 && c == 0xC2 &&
               static_cast<unsigned char>(text[1]) < 0xA0) {  // C1 controls
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(text[1]));
    } else {
      out.append(text.data(), n);
    }
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace

std::string SanitizeUtf8(absl::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  return Escape(text, /*controls=*/false, std::string::npos);
}

std::string Printable(absl::string_view text, size_t max_chars) {
  return Escape(text, /*controls=*/true, max_chars);
}

std::string PrintableText(absl::string_view text) {
  return Escape(text, /*controls=*/true, std::string::npos, /*keep_lines=*/true);
}

std::string BoundedUtf8(absl::string_view text, size_t max_bytes) {
  // Sanitizing never shortens: a prefix a character longer than the bound
  // gives the same cut.
  std::string out = SanitizeUtf8(text.substr(0, max_bytes + 4));
  if (out.size() <= max_bytes) return out;
  size_t end = max_bytes;
  // Back to the first byte of a character (not a 10xxxxxx continuation byte).
  while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xC0) == 0x80) --end;
  out.resize(end);
  return out;
}

}  // namespace prs

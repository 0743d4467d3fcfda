#include "common/json.h"

#include "absl/strings/str_format.h"
#include "common/text.h"

namespace prs {

std::string JsonEscape(absl::string_view raw) {
  // JSON is UTF-8: a stray byte (a path that is not UTF-8) becomes \\xNN.
  const std::string text = SanitizeUtf8(raw);
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
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
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace prs

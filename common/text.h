// Text that reaches a person or a protobuf `string` field: UTF-8 checks and
// escaping of bytes that would garble a terminal or fail a message.
//
// Linux paths and the output of user scripts are bytes, not text. prs carries
// them as bytes wherever they must survive unchanged (mini-batch items,
// snapshot paths, output rows, log files) and passes them through these
// functions where they become part of a message.
#ifndef PRS_COMMON_TEXT_H_
#define PRS_COMMON_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace prs {

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(absl::string_view text);

// `text` with each byte that is not part of a well-formed UTF-8 character
// written as \xNN; well-formed text comes back unchanged. The result is valid
// UTF-8 for any input, so it can go into a protobuf `string` field.
std::string SanitizeUtf8(absl::string_view text);

// `text` for a one-line message: like SanitizeUtf8, and control characters
// are written as \n, \t, \r or \xNN, so a value read from a file cannot move
// the cursor or ring the bell. Longer than `max_chars` bytes, it is cut (at a
// character boundary) and ends with "...(N bytes)".
std::string Printable(absl::string_view text, size_t max_chars = 200);

// `text` for a message of several lines: like Printable, but line ends and
// tabs are kept, and nothing is cut.
std::string PrintableText(absl::string_view text);

// `text` as valid UTF-8 (as SanitizeUtf8) of at most `max_bytes`, cut before
// a character that would not fit whole. Reads no more of `text` than it needs.
std::string BoundedUtf8(absl::string_view text, size_t max_bytes);

// The length of the well-formed UTF-8 character at the start of `text`, or 0
// when `text` does not start with one.
size_t Utf8CharLength(absl::string_view text);

}  // namespace prs

#endif  // PRS_COMMON_TEXT_H_

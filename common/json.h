// The one bit of JSON prs writes by hand: string escaping, for `prs status
// --output json` and the partition keys of tabular task descriptors.
#ifndef PRS_COMMON_JSON_H_
#define PRS_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prs {

// `text` escaped for the inside of a JSON string: quote, backslash and
// control characters are escaped; UTF-8 passes through, and a byte that is
// not part of UTF-8 is written as the text \xNN, so the result is valid JSON.
std::string JsonEscape(absl::string_view text);

}  // namespace prs

#endif  // PRS_COMMON_JSON_H_

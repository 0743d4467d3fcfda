// The one bit of JSON prs writes by hand: string escaping, for `prs status
// --output json` and the partition keys of tabular task descriptors.
#ifndef PRS_COMMON_JSON_H_
#define PRS_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prs {

// `text` escaped for the inside of a JSON string: quote, backslash and
// control characters are escaped; other bytes (UTF-8) pass through.
std::string JsonEscape(absl::string_view text);

}  // namespace prs

#endif  // PRS_COMMON_JSON_H_

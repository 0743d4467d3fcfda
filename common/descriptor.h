// Tabular task descriptors (docs/worker-protocol.md, "Tabular descriptors")
// as a person reads them.
#ifndef PRS_COMMON_DESCRIPTOR_H_
#define PRS_COMMON_DESCRIPTOR_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prs {

// A mini-batch item for an error report: a file path as it is (bytes); a
// tabular descriptor as "PATH, bytes A-B (records N-M)", "PATH (the whole
// file)", "PATH, the rows where k=v, ..." or "PATH, planning from byte B".
// Record numbers count from 1 in the file; they are shown when the range
// carries them (ranges made from a plan).
std::string DescribeItem(absl::string_view item);

}  // namespace prs

#endif  // PRS_COMMON_DESCRIPTOR_H_

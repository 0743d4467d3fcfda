// Tabular task descriptors (docs/worker-protocol.md, "Tabular descriptors"):
// the one codec the master uses to make and read them, and how a person reads
// them. python/prs/_tabular.py parses the same text; both are checked against
// tests/golden/tabular_descriptors.json.
#ifndef PRS_COMMON_TABULAR_DESCRIPTOR_H_
#define PRS_COMMON_TABULAR_DESCRIPTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prs {

// A byte offset in a file, and the number of records before it (counting
// from 0) when known, -1 when not. Ranges made from a plan carry it, for the
// reports of a person; it is never needed to read.
struct TabularPosition {
  int64_t offset = 0;
  int64_t record = -1;
  bool operator==(const TabularPosition&) const = default;
};

// The file's version as the master listed it: workers refuse to read a file
// whose size or mtime differ.
struct TabularStamp {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const TabularStamp&) const = default;
};

// Records [start, end) of one file: "range\tFMT\tSTART[@REC]\tEND[@REC]\tPATH".
// Start offset 0 is the data start; end offset -1 is the file's end.
struct RangeDescriptor {
  std::string format;  // csv, tsv or jsonl
  std::optional<TabularStamp> stamp;
  TabularPosition start;
  TabularPosition end;
  std::string path;
  bool operator==(const RangeDescriptor&) const = default;
};

// The rows of one file whose keys have the given values:
// "group\tFMT\tKEYS_JSON\tVALUES_JSON\tPATH". The JSON lists are carried as
// the worker wrote them (their text is the group's identity).
struct GroupDescriptor {
  std::string format;
  std::optional<TabularStamp> stamp;
  std::string keys_json;
  std::string values_json;
  std::string path;
  bool operator==(const GroupDescriptor&) const = default;
};

// A split plan of one file: "plan\tUNIT\tFMT\tARG\tPATH". For unit bytes or
// rows, ARG is the size of a mini-batch, "SIZE", or "SIZE@BEGIN[@REC]" for the
// rest of a file planned in chunks from byte BEGIN (REC records before it;
// unknown in a plan made by an older master). For unit keys, ARG is the
// partition keys as a JSON list.
struct PlanDescriptor {
  std::string unit;  // bytes, rows or keys
  std::string format;
  std::optional<TabularStamp> stamp;
  int64_t size = 0;       // bytes or rows
  std::string keys_json;  // keys
  TabularPosition begin{0, 0};
  std::string path;
  bool operator==(const PlanDescriptor&) const = default;
};

using TabularDescriptor = std::variant<RangeDescriptor, GroupDescriptor, PlanDescriptor>;

std::string EncodeDescriptor(const TabularDescriptor& descriptor);

// INVALID_ARGUMENT naming what is wrong, for text that is not a well-formed
// descriptor (a file path among them).
absl::StatusOr<TabularDescriptor> DecodeDescriptor(absl::string_view item);

// A mini-batch item for an error report: a file path as it is (bytes); a
// tabular descriptor as "PATH, bytes A-B (records N-M)", "PATH (the whole
// file)", "PATH, the rows where k=v, ..." or "PATH, planning from byte B".
// Record numbers count from 1 in the file; they are shown when the range
// carries them (ranges made from a plan).
std::string DescribeItem(absl::string_view item);

}  // namespace prs

#endif  // PRS_COMMON_TABULAR_DESCRIPTOR_H_

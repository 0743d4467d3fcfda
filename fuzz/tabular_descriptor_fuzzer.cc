// Tabular descriptors (common/tabular_descriptor.h) from any mini-batch item.
//
// Checks: DescribeItem takes anything; what DecodeDescriptor refuses is
// INVALID_ARGUMENT; what it accepts encodes to a descriptor that decodes to
// an equal one, whose encoding is the same text again (the codec's fixed
// point), and the decoded fields are in the ranges the header gives.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/tabular_descriptor.h"
#include "fuzz/fuzz_util.h"

namespace {

bool KnownFormat(const std::string& format) {
  return format == "csv" || format == "tsv" || format == "jsonl";
}

bool JsonList(const std::string& text) {
  return text.size() >= 2 && text.front() == '[' && text.back() == ']';
}

// The ranges of the decoded fields.
void CheckFields(const prs::TabularDescriptor& descriptor) {
  if (const auto* r = std::get_if<prs::RangeDescriptor>(&descriptor)) {
    PRS_FUZZ_CHECK(KnownFormat(r->format) && !r->path.empty());
    PRS_FUZZ_CHECK(!r->stamp || r->stamp->size >= 0);
    PRS_FUZZ_CHECK(r->start.offset >= 0 && r->end.offset >= -1);
    PRS_FUZZ_CHECK(r->start.record >= -1 && r->end.record >= -1);
  } else if (const auto* g = std::get_if<prs::GroupDescriptor>(&descriptor)) {
    PRS_FUZZ_CHECK(KnownFormat(g->format) && !g->path.empty());
    PRS_FUZZ_CHECK(!g->stamp || g->stamp->size >= 0);
    PRS_FUZZ_CHECK(JsonList(g->keys_json) && JsonList(g->values_json));
  } else {
    const auto& p = std::get<prs::PlanDescriptor>(descriptor);
    PRS_FUZZ_CHECK(KnownFormat(p.format) && !p.path.empty());
    PRS_FUZZ_CHECK(!p.stamp || p.stamp->size >= 0);
    if (p.unit == "keys") {
      PRS_FUZZ_CHECK(JsonList(p.keys_json));
    } else {
      PRS_FUZZ_CHECK(p.unit == "bytes" || p.unit == "rows");
      PRS_FUZZ_CHECK(p.size >= 1 && p.begin.offset >= 0 && p.begin.record >= -1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view item(reinterpret_cast<const char*>(data), size);
  const std::string described = prs::DescribeItem(item);

  const absl::StatusOr<prs::TabularDescriptor> decoded = prs::DecodeDescriptor(item);
  if (!decoded.ok()) {
    PRS_FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
    PRS_FUZZ_CHECK(described == item);  // Not a descriptor: a file path, shown as it is.
    return 0;
  }
  CheckFields(*decoded);

  const std::string encoded = prs::EncodeDescriptor(*decoded);
  const absl::StatusOr<prs::TabularDescriptor> again = prs::DecodeDescriptor(encoded);
  PRS_FUZZ_CHECK(again.ok());
  PRS_FUZZ_CHECK(*again == *decoded);
  PRS_FUZZ_CHECK(prs::EncodeDescriptor(*again) == encoded);
  PRS_FUZZ_CHECK(prs::DescribeItem(encoded) == described);
  return 0;
}

#include "common/tabular_descriptor.h"

#include <catch2/catch.hpp>
#include <variant>

#include "common/file_io.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace prs {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value& Field(const Struct& s, const std::string& name) {
  static const Value kNull;
  auto it = s.fields().find(name);
  return it == s.fields().end() ? kNull : it->second;
}

std::string Str(const Struct& s, const std::string& name) { return Field(s, name).string_value(); }

int64_t Int(const Value& v) { return static_cast<int64_t>(v.number_value()); }

TabularPosition Position(const Struct& s, const std::string& name) {
  const auto& list = Field(s, name).list_value();
  REQUIRE(list.values_size() == 2);
  return {Int(list.values(0)), Int(list.values(1))};
}

std::optional<TabularStamp> Stamp(const Struct& s) {
  const Value& v = Field(s, "stamp");
  if (!v.has_list_value()) return std::nullopt;
  return TabularStamp{Int(v.list_value().values(0)), Int(v.list_value().values(1))};
}

// The descriptor a golden case describes, built from its fields.
TabularDescriptor FromCase(const Struct& c) {
  const std::string kind = Str(c, "kind");
  if (kind == "range") {
    return RangeDescriptor{Str(c, "format"), Stamp(c), Position(c, "start"), Position(c, "end"),
                           Str(c, "path")};
  }
  if (kind == "group") {
    return GroupDescriptor{Str(c, "format"), Stamp(c), Str(c, "keys_json"), Str(c, "values_json"),
                           Str(c, "path")};
  }
  REQUIRE(kind == "plan");
  PlanDescriptor p;
  p.unit = Str(c, "unit");
  p.format = Str(c, "format");
  p.stamp = Stamp(c);
  p.path = Str(c, "path");
  if (p.unit == "keys") {
    p.keys_json = Str(c, "keys_json");
  } else {
    p.size = Int(Field(c, "size"));
    p.begin = Position(c, "begin");
  }
  return p;
}

Struct Golden() {
  auto text = ReadFile(PRS_GOLDEN_DIR "/tabular_descriptors.json");
  REQUIRE(text.ok());
  Struct golden;
  REQUIRE(google::protobuf::util::JsonStringToMessage(*text, &golden).ok());
  return golden;
}

TEST_CASE("the descriptor codec encodes and decodes each golden descriptor exactly") {
  const Struct golden = Golden();
  const auto& cases = Field(golden, "cases").list_value();
  REQUIRE(cases.values_size() >= 9);
  for (const Value& v : cases.values()) {
    const Struct& c = v.struct_value();
    const std::string descriptor = Str(c, "descriptor");
    INFO(descriptor);
    const TabularDescriptor expected = FromCase(c);
    CHECK(EncodeDescriptor(expected) == descriptor);
    auto decoded = DecodeDescriptor(descriptor);
    REQUIRE(decoded.ok());
    CHECK(*decoded == expected);
  }
}

TEST_CASE("the descriptor codec refuses each golden malformed descriptor, naming it") {
  const Struct golden = Golden();
  const auto& malformed = Field(golden, "malformed").list_value();
  REQUIRE(malformed.values_size() >= 10);
  for (const Value& v : malformed.values()) {
    INFO(v.string_value());
    auto decoded = DecodeDescriptor(v.string_value());
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(decoded.status().message().find("malformed tabular descriptor") != std::string::npos);
  }
}

TEST_CASE("tabular descriptors read as a person would write them") {
  CHECK(DescribeItem("/data/a b.png") == "/data/a b.png");
  CHECK(DescribeItem("range\tcsv:4295:1796\t1024@10\t2048@25\t/data/sales.csv") ==
        "/data/sales.csv, bytes 1024-2048 (records 11-25)");
  CHECK(DescribeItem("range\tcsv:4295:1796\t1024\t2048\t/data/sales.csv") ==
        "/data/sales.csv, bytes 1024-2048");
  CHECK(DescribeItem("range\tcsv\t0\t-1\t/data/x.csv.gz") == "/data/x.csv.gz (the whole file)");
  CHECK(DescribeItem("group\tcsv:1:2\t[\"store\",\"brand\"]\t[\"7\",\"acme\"]\t/d/m.csv") ==
        "/d/m.csv, the rows where store=7, brand=acme");
  CHECK(DescribeItem("plan\tbytes\tcsv:1:2\t1048576@67108864@12\t/d/big.csv") ==
        "/d/big.csv, planning its mini-batches from byte 67108864");
}

}  // namespace
}  // namespace prs

namespace prs {
namespace {

TEST_CASE("a plan's record count before its begin is unknown when unreadable, not an error") {
  for (const char* item :
       {"plan\tbytes\tcsv\t100@2048\t/d/a.csv", "plan\tbytes\tcsv\t100@2048@x\t/d/a.csv",
        "plan\tbytes\tcsv\t100@2048@-3\t/d/a.csv"}) {
    INFO(item);
    auto decoded = DecodeDescriptor(item);
    REQUIRE(decoded.ok());
    const auto& plan = std::get<PlanDescriptor>(*decoded);
    CHECK(plan.begin == TabularPosition{2048, -1});
    CHECK(EncodeDescriptor(plan) == "plan\tbytes\tcsv\t100@2048\t/d/a.csv");
  }
  CHECK_FALSE(DecodeDescriptor("plan\tbytes\tcsv\t100@x\t/d/a.csv").ok());
}

// Found by fuzz/tabular_descriptor_fuzzer: "SIZE@0" decoded to begin {0, -1}
// and was encoded as "SIZE", which decodes to {0, 0}.
TEST_CASE("a plan beginning at offset 0 keeps its record count through the codec") {
  for (const char* item :
       {"plan\trows\tjsonl\t569@0\t/d/a.jsonl", "plan\tbytes\tcsv\t100@0@5\t/d/a.csv"}) {
    INFO(item);
    auto decoded = DecodeDescriptor(item);
    REQUIRE(decoded.ok());
    CHECK(EncodeDescriptor(*decoded) == item);
    auto again = DecodeDescriptor(EncodeDescriptor(*decoded));
    REQUIRE(again.ok());
    CHECK(*again == *decoded);
  }
  CHECK(std::get<PlanDescriptor>(*DecodeDescriptor("plan\tbytes\tcsv\t100@0@x\t/d/a.csv")).begin ==
        TabularPosition{0, -1});
  CHECK(EncodeDescriptor(*DecodeDescriptor("plan\tbytes\tcsv\t100@0@0\t/d/a.csv")) ==
        "plan\tbytes\tcsv\t100\t/d/a.csv");
}

}  // namespace
}  // namespace prs

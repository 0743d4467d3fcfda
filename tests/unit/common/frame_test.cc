#include "common/frame.h"

#include <catch2/catch.hpp>

namespace prs {
namespace {

TEST_CASE("frames round-trip through the decoder, split at any byte") {
  Frame a{FrameType::kRun, {"7", "/data/a.png", std::string("x\0y", 3)}};
  Frame b{FrameType::kBye, {}};
  const std::string bytes = EncodeFrame(a) + EncodeFrame(b);
  for (size_t split = 0; split <= bytes.size(); ++split) {
    FrameDecoder d;
    d.Append(bytes.substr(0, split));
    std::vector<Frame> got;
    for (;;) {
      auto f = d.Next();
      REQUIRE(f.ok());
      if (!f->has_value()) break;
      got.push_back(**f);
    }
    d.Append(bytes.substr(split));
    for (;;) {
      auto f = d.Next();
      REQUIRE(f.ok());
      if (!f->has_value()) break;
      got.push_back(**f);
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].type == FrameType::kRun);
    CHECK(got[0].fields == a.fields);
    CHECK(got[1].type == FrameType::kBye);
    CHECK(got[1].fields.empty());
  }
}

TEST_CASE("an unknown frame type is an error") {
  std::string bytes = EncodeFrame(Frame{FrameType::kRun, {"1"}});
  bytes[4] = 9;
  FrameDecoder d;
  d.Append(bytes);
  auto f = d.Next();
  REQUIRE_FALSE(f.ok());
  CHECK_THAT(std::string(f.status().message()), Catch::Contains("unknown worker frame type 9"));
}

TEST_CASE("a field longer than its frame is corrupt") {
  std::string bytes = EncodeFrame(Frame{FrameType::kResult, {"abc"}});
  bytes[8] = 100;  // the field's length byte
  FrameDecoder d;
  d.Append(bytes);
  auto f = d.Next();
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace prs

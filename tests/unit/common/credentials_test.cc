#include "common/credentials.h"

#include <catch2/catch.hpp>

namespace prs {
namespace {

TEST_CASE("loopback addresses are told apart from names that only look like one") {
  for (const char* a : {"127.0.0.1:7600", "127.8.9.10:0", "localhost:7600", "[::1]:7600"}) {
    INFO(a);
    CHECK(IsLoopbackAddress(a));
  }
  for (const char* a : {"0.0.0.0:7600", "[::]:7600", "10.0.0.5:7600", ":7600", "0:7600",
                        "127.0.0.1.evil.example:7600", "master.example.org:7600",
                        "[::ffff:127.0.0.1]:7600", "128.0.0.1:7600"}) {
    INFO(a);
    CHECK_FALSE(IsLoopbackAddress(a));
  }
}

TEST_CASE("a token travels in clear text only to this host") {
  CHECK(CheckTokenChannel("127.0.0.1:7600", {}, "secret").ok());
  CHECK(CheckTokenChannel("master:7600", {}, "").ok());
  CHECK(CheckTokenChannel("master:7600", TlsFiles{"/etc/prs/tls/ca.pem", "", ""}, "secret").ok());
  const absl::Status s = CheckTokenChannel("master:7600", {}, "secret");
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(s.message()).find("--tls-ca") != std::string::npos);
}

}  // namespace
}  // namespace prs

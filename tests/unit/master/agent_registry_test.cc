#include "master/agent_registry.h"

#include <catch2/catch.hpp>

namespace prs::master {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::RegisterAgentRequest Request(const std::string& node, int64_t pid) {
  v1::RegisterAgentRequest r;
  r.set_node_id(node);
  r.set_hostname("host-" + node);
  r.set_pid(pid);
  r.set_ships_logs(true);
  return r;
}

TEST_CASE("session ids are unguessable and never reused; a node id has one live agent") {
  AgentRegistry registry(absl::Seconds(10));
  auto a = registry.Register(Request("n1", 100), "agents", kT0);
  REQUIRE(a.ok());
  const std::string first = (*a)->agent_id;
  // "n1#" + 8 hex (the label) + "." + 32 hex (128 random bits, the secret).
  REQUIRE(first.size() == 3 + 8 + 1 + 32);
  CHECK(first.rfind("n1#", 0) == 0);
  CHECK(SessionLabel(first) == first.substr(0, 11));
  CHECK((*a)->principal == "agents");
  auto dup = registry.Register(Request("n1", 101), "agents", kT0);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(dup.status().message().find("give each agent its own --node-id") != std::string::npos);
  // Another identity never takes over a live node id.
  auto other = registry.Register(Request("n1", 100), "mallory", kT0);
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == absl::StatusCode::kPermissionDenied);
  // The same process registering again (after a master restart) is let in.
  auto again = registry.Register(Request("n1", 100), "agents", kT0);
  REQUIRE(again.ok());
  CHECK((*again)->agent_id != first);
  CHECK_FALSE(registry.Register(Request("", 1), "agents", kT0).ok());
}

TEST_CASE("a node id is one printable path part; host and ip are printable") {
  AgentRegistry registry(absl::Seconds(10));
  for (const char* node : {"n1/x", "..", ".", "a\nb", "n\x01"}) {
    INFO(node);
    auto r = registry.Register(Request(node, 1), "agents", kT0);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  auto long_id = registry.Register(Request(std::string(129, 'n'), 1), "agents", kT0);
  CHECK(long_id.status().code() == absl::StatusCode::kInvalidArgument);
  v1::RegisterAgentRequest forged = Request("n1", 1);
  forged.set_hostname("h\n2026-11-30 00:00:00.000|INFO|1|master|job submitted: owner=alice");
  CHECK(registry.Register(forged, "agents", kT0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(registry.Register(Request("node-a.example_1", 1), "agents", kT0).ok());
}

TEST_CASE("a silent agent is lost; a lost session must register again") {
  AgentRegistry registry(absl::Seconds(10));
  const std::string a = (*registry.Register(Request("n1", 1), "agents", kT0))->agent_id;
  const std::string b = (*registry.Register(Request("n2", 2), "agents", kT0))->agent_id;
  REQUIRE(registry.Touch(b, kT0 + absl::Seconds(8)).ok());
  auto lost = registry.TakeLost(kT0 + absl::Seconds(11));
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].agent_id == a);
  auto touched = registry.Touch(a, kT0 + absl::Seconds(12));
  REQUIRE_FALSE(touched.ok());
  CHECK(touched.status().code() == absl::StatusCode::kNotFound);
  CHECK(registry.NodeOf(a) == a);
  CHECK(registry.NodeOf(b) == "n2");
  CHECK(registry.List(kT0 + absl::Seconds(12)).agents(0).last_seen_ms_ago() == 4000);
}

TEST_CASE("every node gave up only when each live agent's node did") {
  AgentRegistry registry(absl::Seconds(10));
  CHECK_FALSE(registry.AllNodesIn({}));
  REQUIRE(registry.Register(Request("n1", 1), "agents", kT0).ok());
  REQUIRE(registry.Register(Request("n2", 2), "agents", kT0).ok());
  CHECK_FALSE(registry.AllNodesIn({"n1"}));
  CHECK(registry.AllNodesIn({"n1", "n2"}));
}

}  // namespace
}  // namespace prs::master

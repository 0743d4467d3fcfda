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

TEST_CASE("sessions get ids never reused; a second live agent with a node id is refused") {
  AgentRegistry registry(/*epoch=*/7, absl::Seconds(10));
  auto a = registry.Register(Request("n1", 100), kT0);
  REQUIRE(a.ok());
  CHECK((*a)->agent_id == "n1#7.1");
  auto dup = registry.Register(Request("n1", 101), kT0);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(dup.status().message().find("give each agent its own --node-id") != std::string::npos);
  // The same process registering again (after a master restart) is let in.
  auto again = registry.Register(Request("n1", 100), kT0);
  REQUIRE(again.ok());
  CHECK((*again)->agent_id == "n1#7.2");
  CHECK_FALSE(registry.Register(Request("", 1), kT0).ok());
}

TEST_CASE("a silent agent is lost; a lost session must register again") {
  AgentRegistry registry(1, absl::Seconds(10));
  const std::string a = (*registry.Register(Request("n1", 1), kT0))->agent_id;
  const std::string b = (*registry.Register(Request("n2", 2), kT0))->agent_id;
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
  AgentRegistry registry(1, absl::Seconds(10));
  CHECK_FALSE(registry.AllNodesIn({}));
  REQUIRE(registry.Register(Request("n1", 1), kT0).ok());
  REQUIRE(registry.Register(Request("n2", 2), kT0).ok());
  CHECK_FALSE(registry.AllNodesIn({"n1"}));
  CHECK(registry.AllNodesIn({"n1", "n2"}));
}

}  // namespace
}  // namespace prs::master

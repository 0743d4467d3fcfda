#include "agent/master_client.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/unit/agent/fake_master_transport.h"

namespace prs::agent {
namespace {

using testing::FakeMasterTransport;

struct Fixture {
  Fixture() {
    auto owned = std::make_unique<FakeMasterTransport>();
    transport = owned.get();
    MasterClientOptions o;
    o.master_address = "test:1";
    o.node_id = "node-a";
    o.ships_logs = false;
    o.on_session_lost = [this](const std::string& id) {
      absl::MutexLock lock(&mu);
      lost.push_back(id);
    };
    client = std::make_unique<MasterClient>(std::move(o), std::move(owned));
  }
  std::vector<std::string> Lost() {
    absl::MutexLock lock(&mu);
    return lost;
  }

  FakeMasterTransport* transport;
  std::unique_ptr<MasterClient> client;
  absl::Mutex mu;
  std::vector<std::string> lost;
};

TEST_CASE("Backoff doubles from 100 ms to a 5 s cap, with jitter in the upper half",
          "[master_client]") {
  Backoff backoff(/*seed=*/42);
  const double caps[] = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0};
  for (double cap : caps) {
    const double s = absl::ToDoubleSeconds(backoff.Next());
    CHECK(s >= cap / 2);
    CHECK(s <= cap);
  }
  backoff.Reset();
  CHECK(absl::ToDoubleSeconds(backoff.Next()) <= 0.1);
}

TEST_CASE("EnsureSession registers once and keeps the session", "[master_client]") {
  Fixture f;
  v1::RegisterAgentResponse resp;
  resp.set_agent_id("a1");
  resp.set_heartbeat_interval_ms(50);  // below the floor of 100 ms
  f.transport->register_answers.push_back(resp);

  CHECK(f.client->CurrentSession().empty());
  CHECK(f.client->EnsureSession() == "a1");
  CHECK(f.client->EnsureSession() == "a1");
  CHECK(f.client->CurrentSession() == "a1");
  CHECK(f.client->heartbeat_interval() == absl::Milliseconds(100));
  absl::MutexLock lock(&f.transport->mu());
  REQUIRE(f.transport->registers.size() == 1);
  CHECK(f.transport->registers[0].node_id() == "node-a");
  CHECK_FALSE(f.transport->registers[0].ships_logs());
  CHECK(f.transport->registers[0].pid() > 0);
}

TEST_CASE("EnsureSession retries a master that cannot be reached", "[master_client]") {
  Fixture f;
  f.transport->register_answers.push_back(absl::UnavailableError("connection refused"));
  f.transport->register_answers.push_back(absl::UnavailableError("connection refused"));
  v1::RegisterAgentResponse resp;
  resp.set_agent_id("a3");
  f.transport->register_answers.push_back(resp);

  CHECK(f.client->EnsureSession() == "a3");
  absl::MutexLock lock(&f.transport->mu());
  CHECK(f.transport->registers.size() == 3);
}

TEST_CASE("NOT_FOUND on a session call drops the session and registers again", "[master_client]") {
  Fixture f;
  const std::string first = f.client->EnsureSession();
  REQUIRE(first == "agent-1");

  SECTION("heartbeat") {
    f.transport->heartbeat_answers.push_back(absl::NotFoundError("unknown agent"));
    v1::HeartbeatRequest req;
    req.set_agent_id(first);
    CHECK(absl::IsNotFound(f.client->Heartbeat(req, absl::Seconds(1)).status()));
  }
  SECTION("pull") {
    f.transport->pull_answers.push_back(absl::NotFoundError("unknown agent"));
    v1::PullTasksRequest req;
    req.set_agent_id(first);
    CHECK(absl::IsNotFound(f.client->PullTasks(req).status()));
  }
  SECTION("report") {
    f.transport->report_answers.push_back(absl::NotFoundError("unknown agent"));
    v1::ReportResultsRequest req;
    req.set_agent_id(first);
    CHECK(absl::IsNotFound(f.client->ReportResults(req).status()));
  }
  SECTION("ship logs") {
    f.transport->ship_answers.push_back(absl::NotFoundError("unknown agent"));
    v1::ShipLogsRequest req;
    req.set_agent_id(first);
    CHECK(absl::IsNotFound(f.client->ShipLogs(req).status()));
  }
  CHECK(f.client->CurrentSession().empty());
  CHECK(f.Lost() == std::vector<std::string>{first});
  CHECK(f.client->EnsureSession() == "agent-2");
}

TEST_CASE("Other answers keep the session", "[master_client]") {
  Fixture f;
  const std::string id = f.client->EnsureSession();

  SECTION("a job the master does not know") {
    f.transport->bundle_answers.push_back(absl::NotFoundError("no such job"));
    v1::GetJobBundleRequest req;
    req.set_agent_id(id);
    req.set_job_id("j1");
    CHECK(absl::IsNotFound(f.client->GetJobBundle(req).status()));
  }
  SECTION("an unreachable master") {
    f.transport->heartbeat_answers.push_back(absl::UnavailableError("down"));
    v1::HeartbeatRequest req;
    req.set_agent_id(id);
    CHECK(absl::IsUnavailable(f.client->Heartbeat(req, absl::Seconds(1)).status()));
  }
  SECTION("NOT_FOUND for a session that already ended") {
    f.transport->heartbeat_answers.push_back(absl::NotFoundError("unknown agent"));
    v1::HeartbeatRequest req;
    req.set_agent_id("an-old-session");
    CHECK(absl::IsNotFound(f.client->Heartbeat(req, absl::Seconds(1)).status()));
  }
  CHECK(f.client->CurrentSession() == id);
  CHECK(f.Lost().empty());
}

TEST_CASE("A pull may take its wait and 10 s more", "[master_client]") {
  Fixture f;
  v1::PullTasksRequest req;
  req.set_agent_id(f.client->EnsureSession());
  req.set_wait_ms(5000);
  REQUIRE(f.client->PullTasks(req).ok());
  absl::MutexLock lock(&f.transport->mu());
  REQUIRE(f.transport->pull_timeouts.size() == 1);
  CHECK(f.transport->pull_timeouts[0] == absl::Seconds(15));
}

TEST_CASE("Stop ends pulls and the retries of registering", "[master_client]") {
  Fixture f;
  for (int i = 0; i < 1000; ++i) {
    f.transport->register_answers.push_back(absl::UnavailableError("connection refused"));
  }
  std::atomic<bool> returned{false};
  std::string session = "unset";
  std::thread registering([&] {
    session = f.client->EnsureSession();
    returned = true;
  });
  f.client->Stop();
  // Woken from its backoff sleep, whatever its length.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!returned && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  CHECK(returned);
  registering.join();
  CHECK(session.empty());
  CHECK(f.client->stopping());

  v1::PullTasksRequest req;
  CHECK(absl::IsCancelled(f.client->PullTasks(req).status()));
}

TEST_CASE("Unregister ends the current session only", "[master_client]") {
  Fixture f;
  f.client->Unregister();  // no session: nothing to say
  {
    absl::MutexLock lock(&f.transport->mu());
    CHECK(f.transport->unregisters.empty());
  }
  const std::string id = f.client->EnsureSession();
  f.client->Unregister();
  absl::MutexLock lock(&f.transport->mu());
  REQUIRE(f.transport->unregisters.size() == 1);
  CHECK(f.transport->unregisters[0].agent_id() == id);
}

}  // namespace
}  // namespace prs::agent

#include "agent/log_shipper.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "tests/unit/agent/fake_master_transport.h"
#include "tests/unit/test_util.h"

namespace prs::agent {
namespace {

using prs::testing::TempDir;
using testing::FakeMasterTransport;

class ShipperFixture {
 public:
  ShipperFixture() {
    auto owned = std::make_unique<FakeMasterTransport>();
    transport = owned.get();
    client = std::make_unique<MasterClient>(MasterClientOptions{"test:1", "node-a", true, nullptr},
                                            std::move(owned));
    shipper = std::make_unique<LogShipper>(client.get(), &appender, [this] {
      absl::MutexLock lock(&mu);
      return current;
    });
  }
  void SetCurrent(const std::string& job_id) {
    absl::MutexLock lock(&mu);
    current = job_id;
  }
  // What was shipped since the last call: data by path, and how many
  // requests said `complete`.
  struct Shipped {
    std::map<std::string, std::string> data;
    std::map<std::string, int64_t> offsets;
    int completes = 0;
  };
  Shipped TakeShipped() {
    Shipped s;
    absl::MutexLock lock(&transport->mu());
    for (const auto& req : transport->ships) {
      if (req.complete()) ++s.completes;
      for (const auto& c : req.chunks()) {
        if (s.offsets.count(c.path()) == 0) s.offsets[c.path()] = c.offset();
        s.data[c.path()] += c.data();
      }
    }
    transport->ships.clear();
    return s;
  }

  TempDir dir;
  FakeMasterTransport* transport;
  std::unique_ptr<MasterClient> client;
  LogAppender appender;
  absl::Mutex mu;
  std::string current ABSL_GUARDED_BY(mu);
  std::unique_ptr<LogShipper> shipper;
};

TEST_CASE("LogShipper sends what grew in the job's tree, and only the tree's parts",
          "[log_shipper]") {
  ShipperFixture f;
  f.dir.Write("logs/user/stdout/node-a/process000.stdout.txt", "hello\n");
  f.dir.Write("logs/sys/node/node-a/agent.txt", "started\n");
  f.dir.Write("logs/perf/node-a/node_resource_usage.csv", "Utc Time\n");
  f.dir.Write("logs/job_result.txt", "the master's own\n");
  f.SetCurrent("j1");
  f.shipper->Add("j1", f.dir.Sub("logs"));

  f.shipper->ShipOnce(/*last=*/false);
  auto first = f.TakeShipped();
  CHECK(first.data.size() == 3);
  CHECK(first.data["user/stdout/node-a/process000.stdout.txt"] == "hello\n");
  CHECK(first.data["sys/node/node-a/agent.txt"] == "started\n");
  CHECK(first.data.count("job_result.txt") == 0);
  CHECK(first.completes == 0);  // the job runs

  // Only the new bytes, at the master's offset.
  std::ofstream(f.dir.Sub("logs/user/stdout/node-a/process000.stdout.txt"), std::ios::app)
      << "world\n";
  f.shipper->ShipOnce(/*last=*/false);
  auto second = f.TakeShipped();
  REQUIRE(second.data.size() == 1);
  CHECK(second.data["user/stdout/node-a/process000.stdout.txt"] == "world\n");
  CHECK(second.offsets["user/stdout/node-a/process000.stdout.txt"] == 6);

  // The job no longer runs here: its logs are complete, and it is dropped.
  f.SetCurrent("");
  f.shipper->ShipOnce(/*last=*/false);
  CHECK(f.TakeShipped().completes == 1);
  f.shipper->ShipOnce(/*last=*/false);
  auto after = f.TakeShipped();
  CHECK(after.data.empty());
  CHECK(after.completes == 0);
}

TEST_CASE("LogShipper drops a job the master does not know", "[log_shipper]") {
  ShipperFixture f;
  f.dir.Write("logs/user/error.txt", "x\n");
  f.SetCurrent("j1");
  f.shipper->Add("j1", f.dir.Sub("logs"));
  f.transport->ship_answers.push_back(absl::FailedPreconditionError("unknown job"));
  f.shipper->ShipOnce(/*last=*/false);
  CHECK(f.TakeShipped().data.size() == 1);
  f.shipper->ShipOnce(/*last=*/false);
  CHECK(f.TakeShipped().data.empty());
}

TEST_CASE("LogShipper's last round ships without registering", "[log_shipper]") {
  ShipperFixture f;
  f.dir.Write("logs/user/stdout/node-a/process000.stdout.txt", "bye\n");
  f.shipper->Add("j1", f.dir.Sub("logs"));
  // No session: nothing can be shipped, and no session is made for it.
  f.shipper->ShipOnce(/*last=*/true);
  CHECK(f.TakeShipped().data.empty());
  {
    absl::MutexLock lock(&f.transport->mu());
    CHECK(f.transport->registers.empty());
  }
  REQUIRE_FALSE(f.client->EnsureSession().empty());
  f.shipper->ShipOnce(/*last=*/true);
  auto last = f.TakeShipped();
  CHECK(last.data["user/stdout/node-a/process000.stdout.txt"] == "bye\n");
  CHECK(last.completes == 1);
}

TEST_CASE("LogShipper::Run ships at once when asked, and ends after Finish", "[log_shipper]") {
  ShipperFixture f;
  REQUIRE_FALSE(f.client->EnsureSession().empty());
  f.dir.Write("logs/user/stdout/node-a/process000.stdout.txt", "out\n");
  f.shipper->Add("j1", f.dir.Sub("logs"));
  std::thread runner([&] { f.shipper->Run(); });
  f.shipper->Finish();
  runner.join();  // returns after its last round
  auto shipped = f.TakeShipped();
  CHECK(shipped.data["user/stdout/node-a/process000.stdout.txt"] == "out\n");
  CHECK(shipped.completes == 1);
}

TEST_CASE("A rewritten file larger than a request starts over in bounded pieces", "[log_shipper]") {
  ShipperFixture f;
  const std::string rel = "sys/node/node-a/listing.txt";
  f.dir.Write("logs/" + rel, "old\n");
  f.SetCurrent("j1");
  f.shipper->Add("j1", f.dir.Sub("logs"));
  f.shipper->ShipOnce(/*last=*/false);
  f.TakeShipped();
  // Rewritten (a new file in its place), and far larger than one request.
  std::string big;
  for (int i = 0; big.size() < (3u << 20); ++i) big += "line " + std::to_string(i) + "\n";
  f.dir.Write("logs/" + rel + ".new", big);
  std::filesystem::rename(f.dir.Sub("logs/" + rel + ".new"), f.dir.Sub("logs/" + rel));
  for (int i = 0; i < 10; ++i) f.shipper->ShipOnce(/*last=*/false);
  absl::MutexLock lock(&f.transport->mu());
  std::string shipped;
  int replaces = 0;
  for (const auto& req : f.transport->ships) {
    int64_t bytes = 0;
    for (const auto& c : req.chunks()) {
      bytes += static_cast<int64_t>(c.data().size());
      replaces += c.replace();
      if (c.replace()) CHECK(c.offset() == 0);
      shipped += c.data();
    }
    CHECK(bytes <= LogShipper::kBatchBytes + LogShipper::kChunkBytes);
  }
  CHECK(replaces == 1);
  CHECK(shipped == big);
}

}  // namespace
}  // namespace prs::agent

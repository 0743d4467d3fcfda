#include "cli/top_frame.h"

#include <catch2/catch.hpp>

namespace prs::cli {
namespace {

TEST_CASE("prs top shows running jobs first, with progress, rate and ETA, then the nodes",
          "[cli]") {
  std::vector<v1::JobStatus> jobs(2);
  jobs[0].set_job_id("done-1");
  jobs[0].set_state(v1::SUCCEEDED);
  jobs[0].mutable_counts()->set_items_total(10);
  jobs[0].mutable_counts()->set_items_succeeded(10);
  jobs[1].set_job_id("busy-2");
  jobs[1].set_state(v1::RUNNING);
  jobs[1].set_owner("alice");
  jobs[1].set_items_per_second(50);
  jobs[1].set_active_agents(2);
  auto* c = jobs[1].mutable_counts();
  c->set_items_total(1000);
  c->set_items_succeeded(240);
  c->set_items_failed(10);
  c->set_listing_done(true);
  v1::ListAgentsResponse agents;
  auto* a = agents.add_agents();
  a->set_node_id("gpu-node-1");
  a->set_ip("10.0.0.7");
  a->add_gpus("0");
  a->add_gpus("1");
  a->set_job_id("busy-2");
  a->set_leases(12);
  a->set_busy_workers(4);
  const std::string frame = TopFrame("m:7600", jobs, agents, absl::FromUnixSeconds(0));
  INFO(frame);
  CHECK(frame.find("prs top  m:7600  1970-01-01 00:00:00 UTC") == 0);
  CHECK(frame.find("JOBS 1 running or queued") != std::string::npos);
  // The running job before the ended one, whatever the order it came in.
  CHECK(frame.find("busy-2") < frame.find("done-1"));
  CHECK(frame.find("[#####...............]  25%") != std::string::npos);  // 250 of 1000
  CHECK(frame.find("250/1000") != std::string::npos);
  CHECK(frame.find("15s") != std::string::npos);  // 750 items left at 50/s
  CHECK(frame.find("ended") != std::string::npos);
  CHECK(frame.find("NODES 1") != std::string::npos);
  CHECK(frame.find("gpu-node-1") != std::string::npos);
  CHECK(frame.find("0,1") != std::string::npos);
}

TEST_CASE("a progress bar is bounded and empty without a total", "[cli]") {
  CHECK(ProgressBar(0, 0, 4) == "[....]   0%");
  CHECK(ProgressBar(5, 4, 4) == "[####] 100%");
  CHECK(ProgressBar(1, 2, 4) == "[##..]  50%");
}

}  // namespace
}  // namespace prs::cli

#include "cli/first_error_log.h"

#include <catch2/catch.hpp>

namespace prs::cli {
namespace {

TEST_CASE("FirstErrorLog takes the master's first_error_log", "[cli]") {
  v1::JobStatus st;
  st.set_first_error_log("user/error/node1/process003.txt");
  st.set_first_error("mini-batch 2 failed ... see logs/user/error/node9/process000.txt");
  CHECK(FirstErrorLog(st, "user/error/node0/process000.txt") == "user/error/node1/process003.txt");
}

TEST_CASE("FirstErrorLog reads an older master's first_error text", "[cli]") {
  v1::JobStatus st;
  st.set_first_error(
      "mini-batch 2 on node1 process003: ValueError; traceback in "
      "/state/jobs/j1/logs/user/error/node1/process003.txt");
  CHECK(FirstErrorLog(st, "") == "user/error/node1/process003.txt");
}

TEST_CASE("FirstErrorLog falls back to the first error file of the tree", "[cli]") {
  v1::JobStatus st;
  CHECK(FirstErrorLog(st, "user/error/node0/process000.txt") == "user/error/node0/process000.txt");
  st.set_first_error("the job could not be started: no inputs");
  CHECK(FirstErrorLog(st, "").empty());
}

}  // namespace
}  // namespace prs::cli

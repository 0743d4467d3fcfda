#include "agent/gpu_query.h"

#include <catch2/catch.hpp>

#include "agent/agent.h"

namespace prs::agent {
namespace {

TEST_CASE("nvidia-smi's GPU rows are read, with what it does not know left empty", "[gpu]") {
  const auto gpus = ParseGpuCsv(
      "0, GPU-5e3c, NVIDIA H200, 97, 80123, 143771, 61, 512.34\n"
      "1, GPU-77aa, NVIDIA H200, [N/A], 3, 143771, [Not Supported], [N/A]\n"
      "No devices were found\n"
      "\n");
  REQUIRE(gpus.size() == 2);
  CHECK(gpus[0].index == "0");
  CHECK(gpus[0].uuid == "GPU-5e3c");
  CHECK(gpus[0].name == "NVIDIA H200");
  CHECK(*gpus[0].utilization_percent == 97);
  CHECK(*gpus[0].memory_used_mib == 80123);
  CHECK(*gpus[0].power_w == Approx(512.34));
  CHECK_FALSE(gpus[1].utilization_percent.has_value());
  CHECK_FALSE(gpus[1].temperature_c.has_value());
  CHECK(*gpus[1].memory_total_mib == 143771);
}

TEST_CASE("nvidia-smi's compute apps are read by pid", "[gpu]") {
  const auto apps = ParseComputeAppsCsv("4242, GPU-5e3c, 20480\n0, GPU-x, 1\nbad line\n");
  REQUIRE(apps.size() == 1);
  CHECK(apps[0].pid == 4242);
  CHECK(apps[0].gpu_uuid == "GPU-5e3c");
  CHECK(*apps[0].used_memory_mib == 20480);
}

TEST_CASE("a CUDA out-of-memory error is told apart and the GPUs' memory is named", "[gpu]") {
  CHECK(
      IsCudaOutOfMemory("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"));
  CHECK(IsCudaOutOfMemory("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED"));
  CHECK_FALSE(IsCudaOutOfMemory("MemoryError"));
  CHECK_FALSE(IsCudaOutOfMemory("ValueError: bad input"));
  const auto gpus = ParseGpuCsv(
      "0, GPU-a, Fake, 1, 80123, 81559, 1, 1\n"
      "1, GPU-b, Fake, 1, 5, 81559, 1, 1\n");
  CHECK(GpuMemoryNow({"0"}, gpus) == "GPU 0: 80,123 of 81,559 MiB used");
  CHECK(GpuMemoryNow({"GPU-b", "0"}, gpus) ==
        "GPU 1: 5 of 81,559 MiB used; GPU 0: 80,123 of 81,559 MiB used");
  CHECK(GpuMemoryNow({"7"}, gpus).empty());
}

TEST_CASE("only the node's own GPUs are recorded, by index or UUID", "[gpu]") {
  const auto all = ParseGpuCsv(
      "0, GPU-a, Fake, 1, 1, 9, 1, 1\n1, GPU-b, Fake, 1, 1, 9, 1, 1\n2, GPU-c, Fake, 1, 1, 9, 1, "
      "1\n");
  const auto mine = OnlyThese(all, {"2", "GPU-a"});
  REQUIRE(mine.size() == 2);
  CHECK(mine[0].index == "0");
  CHECK(mine[1].index == "2");
}

TEST_CASE("prs-agent --gpus: a count or a list of devices, each once", "[gpu]") {
  using Gpus = std::vector<std::string>;
  CHECK(*ParseGpusOption("4") == Gpus{"0", "1", "2", "3"});
  CHECK(ParseGpusOption("0")->empty());
  CHECK(*ParseGpusOption("0,2") == Gpus{"0", "2"});
  CHECK(*ParseGpusOption("2,") == Gpus{"2"});
  CHECK(*ParseGpusOption("GPU-5e3c, MIG-1b2c") == Gpus{"GPU-5e3c", "MIG-1b2c"});
  CHECK(ParseGpusOption("0,0").status().message() ==
        "--gpus: GPU '0' is named twice; name each device once");
  CHECK(std::string(ParseGpusOption("0;rm").status().message()).find("is not a GPU") !=
        std::string::npos);
  CHECK(std::string(ParseGpusOption("-1").status().message()).find("give a count from 0") !=
        std::string::npos);
}

}  // namespace
}  // namespace prs::agent

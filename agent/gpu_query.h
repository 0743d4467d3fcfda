#ifndef PRS_AGENT_GPU_QUERY_H_
#define PRS_AGENT_GPU_QUERY_H_

// What nvidia-smi says about a node's GPUs and the processes on them, for the
// resource monitor (perf/<node>/gpu_usage.csv, gpu_processes_usage.csv) and
// for the report of a CUDA out-of-memory error.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace prs::agent {

// One GPU: `nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,
// memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits`. A
// value nvidia-smi does not have ("[N/A]", "[Not Supported]") is empty.
struct GpuReading {
  std::string index, uuid, name;
  std::optional<double> utilization_percent, memory_used_mib, memory_total_mib, temperature_c,
      power_w;
};

// One process on a GPU: `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory
// --format=csv,noheader,nounits`.
struct GpuProcessReading {
  pid_t pid = 0;
  std::string gpu_uuid;
  std::optional<double> used_memory_mib;
};

// The query's arguments, and the parsers of its answer; lines that do not
// parse are left out.
inline constexpr char kGpuQuery[] =
    "--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,"
    "power.draw";
inline constexpr char kComputeAppsQuery[] = "--query-compute-apps=pid,gpu_uuid,used_memory";
std::vector<GpuReading> ParseGpuCsv(absl::string_view text);
std::vector<GpuProcessReading> ParseComputeAppsCsv(absl::string_view text);

// Runs nvidia-smi (from PATH) with the queries; empty when it is missing,
// fails, or does not answer within 5 s (it is killed). Each call starts one
// process: call it once per sample, not per row.
std::vector<GpuReading> QueryGpus();
std::vector<GpuProcessReading> QueryComputeApps();
// The readings of the devices in `gpus` (index or UUID): nvidia-smi lists
// every GPU of the machine, also those of other users' allocations.
std::vector<GpuReading> OnlyThese(std::vector<GpuReading> readings,
                                  const std::vector<std::string>& gpus);

// Whether a run() error is CUDA running out of memory (PyTorch's
// torch.OutOfMemoryError / "CUDA out of memory", CUDA's
// CUDA_ERROR_OUT_OF_MEMORY, cuDNN's and cuBLAS's allocation failures).
bool IsCudaOutOfMemory(absl::string_view error);

// "GPU 0: 80,123 of 81,559 MiB used; GPU 1: ..." for the devices in `gpus`
// (as CUDA_VISIBLE_DEVICES names them: index or UUID), from `readings`.
std::string GpuMemoryNow(const std::vector<std::string>& gpus,
                         const std::vector<GpuReading>& readings);

}  // namespace prs::agent

#endif  // PRS_AGENT_GPU_QUERY_H_

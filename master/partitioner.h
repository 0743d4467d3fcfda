#ifndef PRS_MASTER_PARTITIONER_H_
#define PRS_MASTER_PARTITIONER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "master/store.h"
#include "prs/v1/job.pb.h"

namespace prs::master {

// Lists file inputs and cuts them into mini-batches of `mini_batch_size` files,
// calling `emit` for each as soon as it is full, so the first mini-batch is
// dispatched while the listing goes on. Memory is bounded by the largest
// directory, not by the input.
//
// An input path is a glob when it holds one of `*?[`; else a folder, walked
// recursively with each folder's entries sorted by name (so the order is
// stable across restarts); else a regular file listing one path per line
// (relative paths are relative to the list file's folder; blank lines and
// lines starting with '#' are skipped). Mini-batches never cross inputs.
//
// Task ids count from 0 in listing order. `emit` returns false to stop early
// (the job was cancelled); `stop` is polled between entries.
//
// Returns NOT_FOUND for a missing input, INVALID_ARGUMENT for an input with
// no files, PERMISSION_DENIED for an unreadable folder.
absl::Status PartitionFileInputs(const std::vector<v1::Input>& inputs, int64_t mini_batch_size,
                                 const std::function<bool(NewTask)>& emit,
                                 const std::atomic<bool>& stop);

}  // namespace prs::master

#endif  // PRS_MASTER_PARTITIONER_H_

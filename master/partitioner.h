#ifndef PRS_MASTER_PARTITIONER_H_
#define PRS_MASTER_PARTITIONER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
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

// Lists tabular inputs (type: tabular) and makes one task per file
// (docs/tabular.md): with partition_keys, a plan task that finds the file's key
// combinations; otherwise a mini-batch of the whole file when it is compressed
// (.gz) or, in bytes mode, no larger than mini_batch_size; else a plan task
// that a worker turns into record-aligned mini-batches. Items are descriptors
// (docs/worker-protocol.md). A top-level input path that is a regular file is a
// data file when its name has a tabular extension or the input sets `format`,
// else a list of paths. Each descriptor's format field carries the file's
// version, "csv:SIZE:MTIME_NS", which workers check before reading.
// INVALID_ARGUMENT for a file of unknown format. A file that vanished while it
// was listed becomes a whole-file mini-batch without a version, which its
// worker fails.
absl::Status PartitionTabularInputs(const v1::JobSpec& spec,
                                    const std::function<bool(NewTask)>& emit,
                                    const std::atomic<bool>& stop);

// A file's version as tabular descriptors carry it, "SIZE:MTIME_NS", or
// nullopt when the file cannot be stat'ed.
std::optional<std::string> FileVersion(const std::string& path);

// "csv", "tsv" or "jsonl" from a file name (.csv; .tsv, .tab; .jsonl, .ndjson,
// .json; each optionally followed by .gz), or "" when it tells nothing.
std::string TabularFormatOf(absl::string_view path);

}  // namespace prs::master

#endif  // PRS_MASTER_PARTITIONER_H_

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
#include "common/tabular_descriptor.h"
#include "master/task.h"
#include "prs/v1/job.pb.h"

namespace prs::master {

// What a listing reports besides mini-batches, and what it leaves out.
struct ListingHooks {
  // Called with a line for master_role.txt for each file or folder left out
  // of the listing and why: a broken link, a link loop, a link to a folder
  // that holds the input, the output folder, a socket or pipe. May be empty.
  std::function<void(const std::string&)> note;
  // The job's output folder, left out of every folder walked and glob
  // matched: a job never lists its own output. Empty for none.
  std::string exclude_dir;
};

// Lists file inputs and cuts them into mini-batches of `mini_batch_size` files,
// calling `emit` for each as soon as it is full, so the first mini-batch is
// dispatched while the listing goes on. Memory is bounded by the largest
// directory, not by the input.
//
// An input with a list_file lists the paths in that file, one per line
// (relative paths are relative to the list file's folder; blank lines and
// lines starting with '#' are skipped). Else its path is a glob when it holds
// one of `*?[`; else a folder, walked recursively with each folder's entries
// sorted by name (so the order is stable across restarts), following links
// to folders but listing each real folder (device and inode) once and never
// a folder that holds the input; else one file. Mini-batches never cross
// inputs.
//
// Task ids count from 0 in listing order. `emit` returns false to stop early
// (the job was cancelled); `stop` is polled between entries.
//
// Returns NOT_FOUND for a missing input, INVALID_ARGUMENT for an input with
// no files, PERMISSION_DENIED for an unreadable folder.
absl::Status PartitionFileInputs(const std::vector<v1::Input>& inputs, int64_t mini_batch_size,
                                 const std::function<bool(NewTask)>& emit,
                                 const std::atomic<bool>& stop, const ListingHooks& hooks = {});

// Lists tabular inputs (type: tabular) and makes one task per file
// (docs/tabular.md): with partition_keys, a plan task that finds the file's key
// combinations; otherwise a mini-batch of the whole file when it is compressed
// (.gz) or, in bytes mode, no larger than mini_batch_size; else a plan task
// that a worker turns into record-aligned mini-batches. Items are descriptors
// (docs/worker-protocol.md). A top-level input path that is a regular file is a
// data file; list_file lists paths as for file inputs. Each descriptor's format field carries the
// file's version, "csv:SIZE:MTIME_NS", which workers check before reading. INVALID_ARGUMENT for a
// file of unknown format. A file that vanished while it was listed becomes a whole-file mini-batch
// without a version, which its worker fails.
absl::Status PartitionTabularInputs(const v1::JobSpec& spec,
                                    const std::function<bool(NewTask)>& emit,
                                    const std::atomic<bool>& stop, const ListingHooks& hooks = {});

// The checks of the inputs at submit, so that a job that cannot list its
// inputs is refused before anything is queued: each input exists, holds at
// least one file (a folder or a glob, leaving the output folder out), and is
// not the output folder itself; every path a list_file names exists (each
// missing one is named, up to 20). INVALID_ARGUMENT naming the input.
// Reads a whole list_file, and stops a folder walk at the first file.
// `cancelled` is polled while a list is checked: CANCELLED when it says so.
// With `name_paths` the message quotes each missing path of a list_file; the
// master gives line numbers only, since it reads the list with its own
// rights and a list_file may name any file it can read (a key): quoting its
// lines would hand them to the submitter. The CLI checks as the user first,
// naming them.
absl::Status CheckInputsAtSubmit(
    const v1::JobSpec& spec, const std::function<bool()>& cancelled = [] { return false; },
    bool name_paths = false);

// A file's version as tabular descriptors carry it, or nullopt when the file
// cannot be stat'ed.
std::optional<TabularStamp> FileStamp(const std::string& path);

// "csv", "tsv" or "jsonl" from a file name (.csv; .tsv, .tab; .jsonl, .ndjson,
// .json; each optionally followed by .gz), or "" when it tells nothing.
std::string TabularFormatOf(absl::string_view path);

}  // namespace prs::master

#endif  // PRS_MASTER_PARTITIONER_H_

#ifndef PRS_MASTER_INPUT_FINGERPRINT_H_
#define PRS_MASTER_INPUT_FINGERPRINT_H_

#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "master/task.h"

struct evp_md_ctx_st;

namespace prs::master {

// What allow_reuse compares: a SHA-256 over a job's mini-batches as its
// listing makes them, in order: each file input's path, size and mtime, or
// each tabular descriptor (which carries its file's size and mtime). Two
// listings with the same fingerprint read the same files in the same
// versions into the same mini-batches. Not thread-safe.
class InputFingerprint {
 public:
  InputFingerprint();
  ~InputFingerprint();
  InputFingerprint(const InputFingerprint&) = delete;
  InputFingerprint& operator=(const InputFingerprint&) = delete;

  // Adds one mini-batch; file paths are stat'ed (a missing file counts as
  // size -1).
  void Add(const NewTask& task, bool tabular);
  // Adds what a run depends on besides its inputs: every file of the side
  // inputs (path, size, mtime) and the worker interpreter when it is a path.
  // FAILED_PRECONDITION when a side input cannot be read on the master: then
  // nobody can tell whether it changed, and the job must not be reused.
  absl::Status AddDependencies(const v1::JobSpec& spec);
  // The fingerprint as 64 hex digits; the object is spent afterwards.
  std::string Finish();

 private:
  void Update(absl::string_view bytes);
  // stat() of an input, relative to its folder held open: inputs come folder
  // by folder, and the path is then walked once per folder, not per file.
  int StatInput(const std::string& path, struct stat* st);
  evp_md_ctx_st* ctx_;
  std::string dir_;  // the folder dir_fd_ holds, with its trailing '/'
  int dir_fd_ = -1;
};

}  // namespace prs::master

#endif  // PRS_MASTER_INPUT_FINGERPRINT_H_

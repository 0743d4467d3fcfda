#include "master/output_committer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace prs::master {

void OutputCommitter::AddJob(int64_t seq, const std::string& path) {
  absl::MutexLock lock(&mu_);
  outputs_[seq].file = MakeFile(path);
}

std::unique_ptr<OutputFile> OutputCommitter::MakeFile(const std::string& path) const {
  return std::make_unique<OutputFile>(path, state_dir_, KnownOutputs());
}

KnownOutput OutputCommitter::KnownOutputs() const {
  return [store = store_](const std::string& id) { return store->IsJobOutput(id); };
}

absl::Status OutputCommitter::Reopen(int64_t seq, const std::string& path,
                                     const StoredJob& stored) {
  absl::MutexLock lock(&mu_);
  Output& out = outputs_[seq];
  if (out.file == nullptr) out.file = MakeFile(path);
  out.length = stored.output_length;
  out.started = stored.output_started;
  if (!out.started) return absl::OkStatus();
  absl::Status s = out.file->Reopen(stored.output_length, stored.output_id);
  if (absl::IsNotFound(s)) {
    out.started = false;  // nothing committed, no file: made at the first rows
    return absl::OkStatus();
  }
  return s;
}

int64_t OutputCommitter::NewRun(int64_t seq) {
  absl::MutexLock lock(&mu_);
  Output& out = outputs_[seq];
  if (out.file != nullptr) out.file->Close();
  return ++out.run;
}

void OutputCommitter::Close(int64_t seq, int64_t run) {
  absl::MutexLock lock(&mu_);
  auto it = outputs_.find(seq);
  if (it != outputs_.end() && it->second.run == run && it->second.file != nullptr) {
    it->second.file->Close();
  }
}

void OutputCommitter::AppendLocked(Output& out, const std::string& job_id, int64_t seq,
                                   const std::string& rows, Result& r) {
  const int64_t length = out.length;
  if (out.file == nullptr || (out.started && !out.file->is_open())) {
    r.status = absl::FailedPreconditionError("the job's output file is closed");
    return;
  }
  if (!out.started) {
    // The earlier file is moved aside and an empty one made; then that is
    // recorded, before any row is written: after a restart, a file at the
    // path of a started job is this job's (cut back to its committed
    // length), and an earlier output is never cut.
    auto note = out.file->Start(job_id, clock_->Now());
    r.status = note.status();
    if (!note.ok()) {
      r.error = std::string(r.status.message());
      return;
    }
    r.note = *std::move(note);
    // The new file (and an earlier one moved aside) survive the machine
    // before the store says the job made it.
    if (durability_ == Durability::kMachine) r.status = out.file->SyncFolder();
    if (r.status.ok()) r.status = store_->SetOutputStarted(seq, out.file->id());
    if (!r.status.ok()) {
      out.file->Close();
      return;
    }
    out.started = true;
  } else if (absl::Status same = out.file->CheckSame(length); !same.ok()) {
    r.status = same;
    r.error = std::string(same.message());
    return;
  }
  r.status = out.file->Append(length, rows);
  // The rows reach the disk before the commit that counts them: after a crash
  // of the machine the file holds at least the committed length, and recovery
  // cuts the rest.
  if (r.status.ok() && durability_ == Durability::kMachine) {
    r.status = out.file->Sync();
    if (!r.status.ok()) (void)out.file->Truncate(length);
  }
  r.appended = r.status.ok();
  if (!r.appended && !out.file->CheckSame(length).ok()) {
    // The rows could not be cut back: they are in the file, uncommitted.
    r.error = absl::StrCat(r.status.message(),
                           "; the output file could not be cut back to its committed length, so "
                           "the job stops");
  }
}

OutputCommitter::Result OutputCommitter::Commit(int64_t seq, const std::string& job_id, bool header,
                                                std::vector<const Outcome*> outcomes) {
  Result r;
  // Held from the run check to the commit, so a resume cannot slip between.
  absl::MutexLock lock(&mu_);
  Output& out = outputs_[seq];
  // A result leased before the job was resumed belongs to a run that is over:
  // its mini-batch was reloaded as pending and runs again, so it is dropped.
  const int64_t current_run = out.run;
  outcomes.erase(std::remove_if(outcomes.begin(), outcomes.end(),
                                [&](const Outcome* o) { return o->run != current_run; }),
                 outcomes.end());
  if (outcomes.empty()) {
    r.stale = true;
    return r;
  }
  r.committed = std::move(outcomes);
  r.batch = SumOutcomes(r.committed, header && out.length == 0);
  const int64_t length = out.length;
  if (!r.batch.rows.empty()) AppendLocked(out, job_id, seq, r.batch.rows, r);
  if (r.status.ok()) {
    r.status = store_->CommitAttempts(seq, r.batch.commits, r.batch.deltas, r.batch.new_tasks);
  }
  if (r.status.ok()) {
    out.length = length + r.batch.deltas.output_bytes;
  } else if (r.appended) {
    if (auto s = out.file->Truncate(length); !s.ok()) {
      spdlog::critical("cannot roll back output file job={} error={}", job_id,
                       std::string(s.message()));
      r.error = absl::StrCat("the commit failed (", r.status.message(),
                             ") and the output file could not be cut back to its committed "
                             "length (",
                             s.message(), "), so the job stops");
    }
  }
  return r;
}

}  // namespace prs::master

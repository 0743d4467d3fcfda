// JobManager: listing a job's inputs into mini-batches (one thread per job),
// the partition_keys groups, and allow_reuse.
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/job_config.h"
#include "google/protobuf/util/message_differencer.h"
#include "master/input_fingerprint.h"
#include "master/job_manager.h"
#include "master/tabular_plans.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {

constexpr int64_t kListerFlushTasks = 256;
constexpr absl::Duration kListerFlushInterval = absl::Milliseconds(200);
// What the listing leaves out is said, not silently skipped; a listing that
// skips thousands of files keeps master_role.txt readable.
constexpr int64_t kMaxListingNotes = 1000;

}  // namespace

void JobManager::StartLister(Job* job) {
  job->listing_started = clock_->Now();
  job->lister = std::thread([this, job] { ListerMain(job); });
}

absl::Status JobManager::ListInputs(Job& job, const std::function<bool(NewTask)>& emit,
                                    const ListingHooks& hooks) {
  if (IsTabular(job.spec)) {
    return PartitionTabularInputs(job.spec, emit, job.stop_listing, hooks);
  }
  const std::vector<v1::Input> inputs(job.spec.inputs().begin(), job.spec.inputs().end());
  return PartitionFileInputs(inputs, job.spec.mini_batch_size(), emit, job.stop_listing, hooks);
}

bool JobManager::FlushListed(Job* job, std::vector<NewTask>& batch, bool done, bool first,
                             absl::Status& status) {
  int64_t items = 0, plans = 0;
  {
    // Back-pressure: wait while the job already has plenty of queued work.
    absl::MutexLock lock(&mu_);
    auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return job->stop_listing.load() ||
             static_cast<int64_t>(job->leases.pending()) < options_.max_pending_per_job;
    };
    mu_.Await(absl::Condition(&room));
    if (job->stop_listing) return false;
    for (auto& t : batch) {
      t.task_id = job->next_task_id++;
      items += std::max<int64_t>(0, t.item_count);
      if (t.kind == TaskKind::kPlan) ++plans;
    }
    job->plans_pending += plans;
  }
  status = store_->InsertTasks(job->seq, batch, TaskSource::kLister, done);
  if (!status.ok()) return false;
  absl::MutexLock lock(&mu_);
  if (job->active()) {
    for (const auto& t : batch) job->leases.Enqueue(t.task_id, 0);
  }
  const int64_t n = static_cast<int64_t>(batch.size());
  if (n > 0) job->last_progress = clock_->Now();
  job->listed += n;
  job->counts.set_mini_batches_created(job->counts.mini_batches_created() + n);
  job->counts.set_plans(job->counts.plans() + plans);
  job->counts.set_items_total(job->counts.items_total() + items);
  if (done) {
    job->counts.set_listing_done(true);
    EventLocked(*job, "INFO",
                absl::StrCat("task creation done: ", job->listed, " mini-batches",
                             job->plans_pending > 0 || job->keys_mode()
                                 ? " (files to plan included; their mini-batches follow)"
                                 : "",
                             ", ", job->counts.items_total(), " items"));
    CheckJobLocked(*job);
  } else if (first && !batch.empty()) {
    EventLocked(
        *job, "INFO",
        absl::StrCat("FIRST_TASK_CREATED: folder 0, offset 0, task_id ", batch.front().task_id));
  }
  ++job->version;
  return true;
}

void JobManager::SaveFingerprint(Job* job, InputFingerprint& fingerprint) {
  // Without readable side inputs the job cannot be reused.
  if (!fingerprint.AddDependencies(job->spec).ok()) return;
  std::string fp = fingerprint.Finish();
  if (!store_->SetInputFingerprint(job->seq, fp).ok()) return;
  absl::MutexLock lock(&mu_);
  job->input_fingerprint = std::move(fp);
}

absl::Status JobManager::ListWithNotes(Job* job, const std::function<bool(NewTask)>& emit) {
  int64_t listing_notes = 0;
  ListingHooks hooks;
  hooks.exclude_dir = job->spec.output();
  hooks.note = [&](const std::string& note) {
    if (++listing_notes > kMaxListingNotes) return;
    absl::MutexLock lock(&mu_);
    NoteLocked(*job, note);
  };
  absl::Status status = ListInputs(*job, emit, hooks);
  if (listing_notes > kMaxListingNotes) {
    absl::MutexLock lock(&mu_);
    EventLocked(*job, "WARNING",
                absl::StrCat("... and ", listing_notes - kMaxListingNotes,
                             " more files or folders left out of the listing"));
  }
  return status;
}

void JobManager::ListerMain(Job* job) {
  // allow_reuse: an identical earlier job's result, if its inputs are the same.
  if (job->reuse_candidate != nullptr && job->listed == 0) {
    // The dry listing has first_task_creation_timeout to itself, as has the
    // real one after it.
    if (TryReuse(job)) return;
    absl::MutexLock lock(&mu_);
    job->listing_started = clock_->Now();
  }
  if (job->stop_listing) return;
  int64_t already_listed;
  {
    absl::MutexLock lock(&mu_);
    already_listed = job->listed;
    EventLocked(*job, "INFO",
                absl::StrCat("task creation started",
                             already_listed > 0 ? absl::StrCat(" (resuming after ", already_listed,
                                                               " mini-batches)")
                                                : ""));
  }
  std::vector<NewTask> batch;
  absl::Time last_flush = clock_->Now();
  bool first = already_listed == 0;
  absl::Status flush_status;
  const auto flush = [&](bool done) {
    if (batch.empty() && !done) return true;
    if (!FlushListed(job, batch, done, first, flush_status)) return false;
    first = false;
    batch.clear();
    last_flush = clock_->Now();
    NotifyWork();
    return true;
  };
  int64_t position = 0;
  const bool tabular = IsTabular(job->spec);
  InputFingerprint fingerprint;
  const auto emit = [&](NewTask task) {
    if (job->spec.allow_reuse()) fingerprint.Add(task, tabular);
    // Tasks made before a restart come again in the same order: skip them.
    if (position++ < already_listed) return !job->stop_listing.load();
    batch.push_back(std::move(task));
    if (first || static_cast<int64_t>(batch.size()) >= kListerFlushTasks ||
        clock_->Now() - last_flush >= kListerFlushInterval) {
      return flush(false);
    }
    return true;
  };
  absl::Status status = ListWithNotes(job, emit);
  if (job->stop_listing) return;
  // Before the listing is done (and the job may end): a job that succeeds
  // can be reused.
  if (status.ok() && flush_status.ok() && job->spec.allow_reuse()) {
    SaveFingerprint(job, fingerprint);
  }
  if (status.ok() && flush_status.ok()) flush(true);
  if (status.ok()) status = flush_status;
  EndListing(job, status);
}

void JobManager::EndListing(Job* job, absl::Status status) {
  if (status.ok()) {
    PersistState(job);  // the last mini-batches may have ended the job already
    MaybeMakeGroups(job);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (job->active()) {
      EndJobLocked(*job, v1::FAILED, absl::StrCat("listing the inputs failed: ", status.message()));
    }
  }
  PersistState(job);
  NotifyWork();
}

absl::Status JobManager::MakeGroupTasks(Job* job, std::vector<NewTask>& tasks) {
  auto plans = store_->KeyPlans(job->seq);
  if (!plans.ok()) return plans.status();
  std::map<std::string, KeyGroup> groups;
  for (const auto& p : *plans) {
    if (auto s = AddKeyPlan(p.descriptor, p.plan, groups); !s.ok()) return s;
  }
  int64_t first_id;
  {
    absl::MutexLock lock(&mu_);  // only to reserve the ids
    first_id = job->next_task_id;
    job->next_task_id += static_cast<int64_t>(groups.size());
  }
  tasks = GroupTasks(groups, first_id);
  return store_->InsertTasks(job->seq, tasks, TaskSource::kGroups, true);
}

void JobManager::MaybeMakeGroups(Job* job) {
  {
    absl::MutexLock lock(&mu_);
    if (!job->keys_mode() || job->groups_done || job->groups_building || !job->active() ||
        !job->counts.listing_done() || job->plans_pending > 0) {
      return;
    }
    job->groups_building = true;
  }
  std::vector<NewTask> tasks;
  absl::Status status = MakeGroupTasks(job, tasks);
  int64_t items = 0;
  for (const auto& t : tasks) items += t.item_count;
  {
    absl::MutexLock lock(&mu_);
    job->groups_building = false;
    if (!status.ok()) {
      if (job->active()) {
        EndJobLocked(
            *job, v1::FAILED,
            absl::StrCat("making the partition_keys mini-batches failed: ", status.message()));
      }
    } else {
      job->groups_done = true;
      if (job->active()) {
        for (const auto& t : tasks) job->leases.Enqueue(t.task_id, 0);
      }
      job->counts.set_mini_batches_created(job->counts.mini_batches_created() +
                                           static_cast<int64_t>(tasks.size()));
      job->counts.set_items_total(job->counts.items_total() + items);
      EventLocked(
          *job, "INFO",
          absl::StrCat("partition_keys: ", tasks.size(),
                       " mini-batches, one per distinct key combination, ", items, " records"));
      CheckJobLocked(*job);
    }
    ++job->version;
  }
  PersistState(job);
  NotifyWork();
}

// --- allow_reuse --------------------------------------------------------------

Job* JobManager::FindReuseCandidate(const v1::JobSpec& spec, const v1::SourceSnapshot& snapshot) {
  std::vector<Job*> candidates;  // newest first
  {
    absl::MutexLock lock(&mu_);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      Job* j = *it;
      if (j->state == v1::SUCCEEDED && j->result_flushed && !j->input_fingerprint.empty() &&
          google::protobuf::util::MessageDifferencer::Equals(j->spec, spec)) {
        candidates.push_back(j);
      }
    }
  }
  // The same script snapshot: the same files with the same modes and bytes.
  const auto files = [](const v1::SourceSnapshot& snap) {
    std::map<std::string, std::pair<uint32_t, std::string>> out;
    for (const auto& f : snap.files()) out[f.path()] = {f.mode(), f.content()};
    return out;
  };
  const auto wanted = files(snapshot);
  for (Job* j : candidates) {
    auto stored = store_->GetSnapshot(j->seq);
    if (stored.ok() && files(*stored) == wanted) return j;
  }
  return nullptr;
}

std::string JobManager::WhyNotReuse(Job* job, const std::string& fp) {
  Job* const candidate = job->reuse_candidate;
  std::string output_file;
  {
    absl::MutexLock lock(&mu_);
    output_file = candidate->output_file;
    if (fp != candidate->input_fingerprint) {
      return "the inputs differ (a file added, removed or changed, in the inputs or the side "
             "inputs)";
    }
    for (Job* other : order_) {
      if (other->seq > candidate->seq && other != job && !output_file.empty() &&
          other->output_key == candidate->output_key && other->output_started) {
        return absl::StrCat("job ", other->job_id, " has written its output file since");
      }
    }
  }
  if (output_file.empty()) return "";
  auto stored = store_->LoadJob(candidate->seq);
  struct stat st {};
  // The same file (when its identity is known) with the committed length.
  if (!stored.ok() || ::stat(output_file.c_str(), &st) != 0 ||
      st.st_size != stored->output_length ||
      (!stored->output_id.empty() &&
       stored->output_id != absl::StrCat(st.st_dev, ":", st.st_ino))) {
    return absl::StrCat("its output ", output_file, " is gone or was changed");
  }
  return "";
}

bool JobManager::TryReuse(Job* job) {
  Job* const candidate = job->reuse_candidate;
  InputFingerprint fingerprint;
  const bool tabular = IsTabular(job->spec);
  ListingHooks hooks;  // no notes: the real listing, if any, makes them
  hooks.exclude_dir = job->spec.output();
  const absl::Status listed = ListInputs(
      *job,
      [&](NewTask task) {
        fingerprint.Add(task, tabular);
        return !job->stop_listing.load();
      },
      hooks);
  if (!listed.ok() || job->stop_listing) return false;
  const absl::Status dependencies = fingerprint.AddDependencies(job->spec);
  const std::string fp = fingerprint.Finish();
  std::string why_not =
      dependencies.ok() ? WhyNotReuse(job, fp) : std::string(dependencies.message());
  std::string origin;
  {
    absl::MutexLock lock(&mu_);
    origin = candidate->reused_from.empty() ? candidate->job_id : candidate->reused_from;
  }
  if (why_not.empty()) {
    absl::Status copied = store_->CopyResult(job->seq, candidate->seq, origin);
    absl::StatusOr<StoredJob> now = copied.ok() ? store_->LoadJob(job->seq) : copied;
    if (now.ok()) {
      {
        absl::MutexLock lock(&mu_);
        job->counts = now->counts;
        job->output_file = candidate->output_file;
        job->output_key = candidate->output_key;
        job->reused_from = origin;
        job->input_fingerprint = fp;
        job->listed = now->listed;
        NoteLocked(*job,
                   absl::StrCat("allow_reuse: the result of job ", candidate->job_id,
                                ", which ran the same script with the same settings on the same "
                                "inputs, is this job's; nothing ran",
                                job->output_file.empty()
                                    ? ""
                                    : absl::StrCat(" (the output is ", job->output_file, ")"),
                                ". Set allow_reuse: false to run it again"));
        EndJobLocked(*job, v1::SUCCEEDED, "");
      }
      PersistState(job);
      NotifyWork();
      spdlog::info("job reused job={} from={}", job->job_id, candidate->job_id);
      return true;
    }
    why_not = std::string(now.status().message());
  }
  absl::MutexLock lock(&mu_);
  EventLocked(*job, "INFO",
              absl::StrCat("allow_reuse: job ", candidate->job_id,
                           " had the same script and settings, but ", why_not, "; running"));
  return false;
}

}  // namespace prs::master

#ifndef PRS_MASTER_LEASE_TABLE_H_
#define PRS_MASTER_LEASE_TABLE_H_

// One job's mini-batch queue and its leases: grant, fencing, give back.
// Not thread-safe: the job manager guards it with its state lock
// (master/lock_order.h). No I/O.

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "master/task.h"

namespace prs::master {

// A mini-batch handed to an agent. Only the holder of the current lease may
// report its result, once (fencing): a lease that was given back, reclaimed
// or superseded is gone from the table.
struct Lease {
  std::string lease_id;  // 128 random bits: cannot be guessed
  std::string agent_id;
  int32_t attempt = 0;     // this try, from 1
  int64_t item_count = 0;  // -1: not known yet (tabular)
  absl::Time granted;
  int64_t run = 0;  // the job's run (resumes) the lease belongs to
  TaskKind kind = TaskKind::kRun;
  std::string plan_descriptor;  // a plan task's item
};

class LeaseTable {
 public:
  struct Granted {
    int64_t task_id = 0;
    Lease lease;
  };
  // A lease taken out of the table, with its task.
  using Taken = std::pair<int64_t, Lease>;

  // Queues a mini-batch that has used `tries` tries: at the back, or at the
  // front (plans, and mini-batches given back unrun, go first).
  void Enqueue(int64_t task_id, int32_t tries) { pending_.emplace_back(task_id, tries); }
  void EnqueueFront(int64_t task_id, int32_t tries) { pending_.emplace_front(task_id, tries); }
  // Replaces the queue (recovery, resume) and drops every lease.
  void Reset(const std::vector<std::pair<int64_t, int32_t>>& pending);
  // Drops the queue and every lease (the job ended; the store keeps its
  // mini-batches PENDING, for resume). Returns the leases dropped.
  std::vector<Taken> Clear();

  // Leases up to `max` mini-batches from the front of the queue to `agent_id`,
  // each with an id from `new_lease_id`.
  std::vector<Granted> Grant(const std::string& agent_id, int max, absl::Time now, int64_t run,
                             const std::function<std::string()>& new_lease_id);

  // The current lease of `task_id` if it is `lease_id` (and, when
  // `agent_id` is given, held by that agent); nullptr otherwise.
  Lease* Find(int64_t task_id, const std::string& lease_id, const std::string* agent_id = nullptr);
  // Fencing: takes the lease out when it is the current one, as Find says.
  std::optional<Lease> Take(int64_t task_id, const std::string& lease_id,
                            const std::string* agent_id = nullptr);
  // Takes out every lease of `agent_id` (it stopped or was lost).
  std::vector<Taken> TakeAllOf(const std::string& agent_id);
  // Takes out the leases of `agent_id` granted at or before `cutoff` that are
  // not in `held`: their PullTasks reply never reached the agent.
  std::vector<Taken> TakeUnheld(const std::string& agent_id, const std::set<std::string>& held,
                                absl::Time cutoff);

  // Counts one failed delivery of a mini-batch; returns how many so far.
  int NoteUndelivered(int64_t task_id) { return ++undelivered_[task_id]; }
  // The mini-batch ended: its failed deliveries are forgotten.
  void ForgetUndelivered(int64_t task_id) { undelivered_.erase(task_id); }

  size_t pending() const { return pending_.size(); }
  size_t leased() const { return leased_.size(); }
  bool has_pending() const { return !pending_.empty(); }
  // Nothing queued and nothing leased.
  bool idle() const { return pending_.empty() && leased_.empty(); }
  // The agents holding leases (for a message).
  std::set<std::string> holders() const;

 private:
  std::deque<std::pair<int64_t, int32_t>> pending_;  // (task id, tries used)
  absl::flat_hash_map<int64_t, Lease> leased_;       // by task id
  // Mini-batches whose lease did not reach an agent (a reply lost on the
  // way, a store read that failed), by task id: how many times.
  absl::flat_hash_map<int64_t, int> undelivered_;
};

}  // namespace prs::master

#endif  // PRS_MASTER_LEASE_TABLE_H_

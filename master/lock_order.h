#ifndef PRS_MASTER_LOCK_ORDER_H_
#define PRS_MASTER_LOCK_ORDER_H_

// The master's mutexes and the one order they are taken in. A thread holding
// one of them may take only those listed below it, never one above:
//
//   1. JobManager::persist_mu_  Writes of a job's state row, so that the last
//                               write carries the newest state; an ended job's
//                               output is closed and its log tree flushed
//                               under it.
//   2. OutputCommitter::mu_     Output appends with their store commits
//                               (master/output_committer.h). Never held with
//                               3 or 4.
//   3. JobManager::files_mu_    One log tree flush at a time
//                               (master/log_tree_writer.h); takes 4 to collect
//                               and to put back what failed.
//   4. JobManager::mu_          The in-memory state: jobs, their lease tables,
//                               the agent registry. No I/O under it: no
//                               SQLite, no file, no RPC.
//   5. JobManager::listener_mu_ The work and end listeners (a leaf). The work
//                               listener is called with no lock held; the end
//                               listener under 1 or 3, and it only queues
//                               the wake on the server's executor (a leaf).
//
// The server's own: MasterServer::Impl::watchers_mu_ (the WatchJob streams)
// and, under it, each stream's Watcher::mu_ (its alarm); taken by a queued
// wake with nothing else held, never with 1-5.
//
// Store::mu_ (master/store.h) is a leaf inside the store: taken under 1 and 2,
// never under 4. The parts without a mutex of their own (LeaseTable,
// AgentRegistry, Job) are guarded by 4, and the pure parts
// (attempt_outcome, thresholds, tabular_plans) hold no state.
//
// Threads: gRPC's callback threads (the RPCs), the server's ticker (Tick,
// about once a second), and one lister thread per job while it lists.

#endif  // PRS_MASTER_LOCK_ORDER_H_

#ifndef PRS_MASTER_EXECUTOR_H_
#define PRS_MASTER_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace prs::master {

// A fixed pool of threads running closures in FIFO order. gRPC reactions post
// their blocking work (SQLite, files) here instead of running it inline.
// Thread-safe. The destructor runs what was queued, then joins.
class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Run(std::function<void()> fn);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace prs::master

#endif  // PRS_MASTER_EXECUTOR_H_

#ifndef PRS_MASTER_METRICS_H_
#define PRS_MASTER_METRICS_H_

// What the master counts for Prometheus (`prs-master --http-listen`,
// /metrics): counters bumped on the hot paths without a lock, latency
// histograms with fixed buckets, and gRPC calls by method and code. The
// gauges (jobs, agents, workers) are read from the JobManager at scrape time
// (master/web.cc); this file also has the text format's writer.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace prs::master {

// A Prometheus histogram: cumulative buckets with upper bounds `bounds`
// (increasing), +Inf, a sum and a count. Observe() is lock-free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micros_{0};               // the sum, in millionths
};

// gRPC calls by method and status code, counted once each when its status is
// sent. The methods are the services' own (fixed at start): any other name a
// client sends is counted as "other", so the label set stays bounded.
class RpcCounts {
 public:
  static constexpr int kCodes = 17;  // grpc::StatusCode 0..16
  explicit RpcCounts(const std::vector<std::string>& methods);
  void Count(absl::string_view method, int code);
  // (method, code, count) for every non-zero count.
  std::vector<std::tuple<std::string, int, uint64_t>> Read() const;

 private:
  std::vector<std::string> names_;  // the methods, then "other"
  absl::flat_hash_map<std::string, size_t> index_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // names_.size() * kCodes
};

// The master's counters (JobManager owns one; the server's interceptor and
// the HTTP side read it).
struct MasterMetrics {
  MasterMetrics();

  std::atomic<uint64_t> mini_batches_dispatched{0};  // leased to agents by PullTasks
  std::atomic<uint64_t> results_accepted{0};         // reports of the current lease
  std::atomic<uint64_t> results_rejected{0};         // stale: another lease, or reported twice
  std::atomic<uint64_t> mini_batches_committed{0};   // results in the output and the store
  std::atomic<uint64_t> agents_registered{0};
  std::atomic<uint64_t> agents_lost{0};  // declared lost by heartbeat timeout
  // Seconds from a mini-batch's lease to its result reaching the master.
  Histogram pull_to_report_seconds;
  // Seconds to commit one job's results (rows appended, one transaction).
  Histogram commit_seconds;
  std::unique_ptr<RpcCounts> rpcs;  // set by the server before it serves
};

// Writes the Prometheus text format (version 0.0.4): each family's HELP and
// TYPE once, before its first sample; label values escaped.
class PrometheusWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  // `type`: counter, gauge or histogram.
  void Sample(absl::string_view family, absl::string_view type, absl::string_view help,
              const Labels& labels, double value);
  void Histogram(absl::string_view family, absl::string_view help, const Labels& labels,
                 const Histogram::Snapshot& snapshot);
  const std::string& text() const { return out_; }

 private:
  void Header(absl::string_view family, absl::string_view type, absl::string_view help);
  void Line(absl::string_view name, const Labels& labels, double value);
  std::string out_;
  std::string last_family_;
};

// CPU seconds, resident and virtual bytes, start time, open and maximum file
// descriptors of this process, as the standard process_* metrics.
void WriteProcessMetrics(PrometheusWriter& w);

}  // namespace prs::master

#endif  // PRS_MASTER_METRICS_H_

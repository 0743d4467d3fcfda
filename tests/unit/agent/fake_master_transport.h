#ifndef PRS_TESTS_UNIT_AGENT_FAKE_MASTER_TRANSPORT_H_
#define PRS_TESTS_UNIT_AGENT_FAKE_MASTER_TRANSPORT_H_

// A MasterTransport that answers from queues of canned results and records
// every request, for testing the agent's parts without a master.

#include <deque>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/master_client.h"

namespace prs::agent::testing {

class FakeMasterTransport final : public MasterTransport {
 public:
  // Each call answers with the front of its queue, or an empty OK response.
  absl::StatusOr<v1::RegisterAgentResponse> RegisterAgent(const v1::RegisterAgentRequest& request,
                                                          absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    registers.push_back(request);
    auto answer = Next(register_answers);
    if (answer.ok() && answer->agent_id().empty()) {
      answer->set_agent_id("agent-" + std::to_string(registers.size()));
    }
    return answer;
  }
  absl::Status UnregisterAgent(const v1::UnregisterAgentRequest& request,
                               absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    unregisters.push_back(request);
    return absl::OkStatus();
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                  absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    heartbeats.push_back(request);
    return Next(heartbeat_answers);
  }
  absl::StatusOr<v1::PullTasksResponse> PullTasks(const v1::PullTasksRequest& request,
                                                  absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    if (pulls_cancelled) return absl::CancelledError("cancelled");
    pulls.push_back(request);
    pull_timeouts.push_back(timeout);
    return Next(pull_answers);
  }
  void CancelPulls() override {
    absl::MutexLock lock(&mu_);
    pulls_cancelled = true;
  }
  absl::StatusOr<v1::ReportResultsResponse> ReportResults(const v1::ReportResultsRequest& request,
                                                          absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    reports.push_back(request);
    return Next(report_answers);
  }
  absl::StatusOr<v1::GetJobBundleResponse> GetJobBundle(const v1::GetJobBundleRequest& request,
                                                        absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    return Next(bundle_answers);
  }
  absl::StatusOr<v1::ShipLogsResponse> ShipLogs(const v1::ShipLogsRequest& request,
                                                absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    ships.push_back(request);
    if (!ship_answers.empty()) return Next(ship_answers);
    // As the master: its size of each file after the piece.
    v1::ShipLogsResponse resp;
    for (const auto& c : request.chunks()) {
      resp.add_sizes(c.offset() + static_cast<int64_t>(c.data().size()));
    }
    return resp;
  }

  // Guarded by mu(); tests read them once the calls are done.
  absl::Mutex& mu() { return mu_; }
  std::deque<absl::StatusOr<v1::RegisterAgentResponse>> register_answers;
  std::deque<absl::StatusOr<v1::HeartbeatResponse>> heartbeat_answers;
  std::deque<absl::StatusOr<v1::PullTasksResponse>> pull_answers;
  std::deque<absl::StatusOr<v1::ReportResultsResponse>> report_answers;
  std::deque<absl::StatusOr<v1::GetJobBundleResponse>> bundle_answers;
  std::deque<absl::StatusOr<v1::ShipLogsResponse>> ship_answers;
  std::vector<v1::RegisterAgentRequest> registers;
  std::vector<v1::UnregisterAgentRequest> unregisters;
  std::vector<v1::HeartbeatRequest> heartbeats;
  std::vector<v1::PullTasksRequest> pulls;
  std::vector<absl::Duration> pull_timeouts;
  std::vector<v1::ReportResultsRequest> reports;
  std::vector<v1::ShipLogsRequest> ships;
  bool pulls_cancelled = false;

 private:
  template <typename T>
  static absl::StatusOr<T> Next(std::deque<absl::StatusOr<T>>& answers) {
    if (answers.empty()) return T();
    absl::StatusOr<T> next = std::move(answers.front());
    answers.pop_front();
    return next;
  }

  absl::Mutex mu_;
};

}  // namespace prs::agent::testing

#endif  // PRS_TESTS_UNIT_AGENT_FAKE_MASTER_TRANSPORT_H_

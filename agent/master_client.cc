#include "agent/master_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "common/credentials.h"
#include "common/grpc_defaults.h"
#include "common/paths.h"
#include "common/status_grpc.h"
#include "common/text.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace prs::agent {
namespace {

// A session id without its secret part ("node#tag.secret" → "node#tag"), for
// logs: the secret lets a process act in the session's name.
std::string Label(const std::string& agent_id) { return agent_id.substr(0, agent_id.rfind('.')); }

constexpr absl::Duration kRpcDeadline = absl::Seconds(30);
constexpr absl::Duration kRegisterDeadline = absl::Seconds(5);
constexpr absl::Duration kUnregisterDeadline = absl::Seconds(2);
// A PullTasks is held by the master up to its wait_ms; this much more is
// left for the network.
constexpr absl::Duration kPullSlack = absl::Seconds(10);

// The gRPC transport: every call's grpc::Status becomes an absl::Status here,
// and nowhere else in the agent.
class GrpcTransport final : public MasterTransport {
 public:
  GrpcTransport(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
                std::string token)
      : token_(std::move(token)) {
    // Reconnect quickly after a master restart.
    grpc::ChannelArguments args = DefaultChannelArguments(absl::Milliseconds(200));
    stub_ = v1::AgentService::NewStub(grpc::CreateCustomChannel(address, credentials, args));
  }

  absl::StatusOr<v1::RegisterAgentResponse> RegisterAgent(const v1::RegisterAgentRequest& request,
                                                          absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::RegisterAgent, request, timeout);
  }
  absl::Status UnregisterAgent(const v1::UnregisterAgentRequest& request,
                               absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::UnregisterAgent, request, timeout).status();
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                  absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::Heartbeat, request, timeout);
  }
  absl::StatusOr<v1::ReportResultsResponse> ReportResults(const v1::ReportResultsRequest& request,
                                                          absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::ReportResults, request, timeout);
  }
  absl::StatusOr<v1::GetJobBundleResponse> GetJobBundle(const v1::GetJobBundleRequest& request,
                                                        absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::GetJobBundle, request, timeout);
  }
  absl::StatusOr<v1::ShipLogsResponse> ShipLogs(const v1::ShipLogsRequest& request,
                                                absl::Duration timeout) override {
    return Call(&v1::AgentService::Stub::ShipLogs, request, timeout);
  }

  absl::StatusOr<v1::PullTasksResponse> PullTasks(const v1::PullTasksRequest& request,
                                                  absl::Duration timeout) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(RpcDeadline(timeout));
    AddToken(ctx, token_);
    {
      // Registered under the lock that CancelPulls() takes, so that a cancel
      // is never lost between the check and the call.
      absl::MutexLock lock(&mu_);
      if (pulls_cancelled_) return absl::CancelledError("the agent is stopping");
      pull_ctx_ = &ctx;
    }
    v1::PullTasksResponse response;
    const grpc::Status status = stub_->PullTasks(&ctx, request, &response);
    absl::MutexLock lock(&mu_);
    pull_ctx_ = nullptr;
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  void CancelPulls() override {
    absl::MutexLock lock(&mu_);
    pulls_cancelled_ = true;
    if (pull_ctx_ != nullptr) pull_ctx_->TryCancel();
  }

 private:
  template <typename Request, typename Response>
  using Method = grpc::Status (v1::AgentService::Stub::*)(grpc::ClientContext*, const Request&,
                                                          Response*);

  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(Method<Request, Response> method, const Request& request,
                                absl::Duration timeout) {
    grpc::ClientContext ctx;
    ctx.set_deadline(RpcDeadline(timeout));
    AddToken(ctx, token_);
    Response response;
    const grpc::Status status = (stub_.get()->*method)(&ctx, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  const std::string token_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  absl::Mutex mu_;
  bool pulls_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* pull_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace

absl::Duration Backoff::Next() {
  if (!rng_) rng_.emplace(seed_ ? *seed_ : std::random_device{}());
  const double cap = std::min(5.0, 0.1 * (1 << std::min(attempt_++, 6)));
  std::uniform_real_distribution<double> dist(cap / 2, cap);
  return absl::Seconds(dist(*rng_));
}

absl::StatusOr<std::unique_ptr<MasterTransport>> MakeGrpcTransport(const std::string& address,
                                                                   const TlsFiles& tls,
                                                                   const std::string& token) {
  if (auto s = CheckTokenChannel(address, tls, token); !s.ok()) return s;
  auto credentials = MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<MasterTransport>(
      std::make_unique<GrpcTransport>(address, *std::move(credentials), token));
}

MasterClient::MasterClient(MasterClientOptions options, std::unique_ptr<MasterTransport> transport)
    : options_(std::move(options)), transport_(std::move(transport)) {}

std::string MasterClient::EnsureSession() {
  absl::MutexLock session(&session_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!agent_id_.empty()) return agent_id_;
  }
  Backoff backoff;
  for (;;) {
    if (stopping()) return "";
    absl::StatusOr<std::string> agent_id = Register();
    if (agent_id.ok()) return *agent_id;
    spdlog::warn("cannot register with master={}: {}; retrying", options_.master_address,
                 std::string(agent_id.status().message()));
    SleepUnlessStopping(backoff.Next());
  }
}

absl::StatusOr<std::string> MasterClient::Register() {
  v1::RegisterAgentRequest req;
  req.set_node_id(options_.node_id);
  req.set_hostname(SanitizeUtf8(HostName()));
  req.set_ip(PrimaryIp());
  req.set_pid(::getpid());
  req.set_ships_logs(options_.ships_logs);
  for (const std::string& gpu : options_.gpus) req.add_gpus(gpu);
  absl::StatusOr<v1::RegisterAgentResponse> resp =
      transport_->RegisterAgent(req, kRegisterDeadline);
  if (!resp.ok()) return resp.status();
  absl::MutexLock lock(&mu_);
  agent_id_ = resp->agent_id();
  heartbeat_interval_ = absl::Milliseconds(std::max(100, resp->heartbeat_interval_ms()));
  spdlog::info("registered agent={} master={}", Label(agent_id_), options_.master_address);
  return agent_id_;
}

std::string MasterClient::CurrentSession() const {
  absl::MutexLock lock(&mu_);
  return agent_id_;
}

void MasterClient::DropSession(const std::string& agent_id) {
  if (agent_id.empty() || CurrentSession() != agent_id) return;
  // Held until on_session_lost returns: no new session registers (and pulls
  // work that the callback would then drop) before the old one is cleared up.
  absl::MutexLock session(&session_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (agent_id_ != agent_id) return;  // dropped meanwhile, maybe a new one since
    spdlog::warn("session agent={} is no longer known to the master; registering again",
                 Label(agent_id));
    agent_id_.clear();
  }
  if (options_.on_session_lost) options_.on_session_lost(agent_id);
}

void MasterClient::Unregister() {
  const std::string agent_id = CurrentSession();
  if (agent_id.empty()) return;
  v1::UnregisterAgentRequest req;
  req.set_agent_id(agent_id);
  if (transport_->UnregisterAgent(req, kUnregisterDeadline).ok()) {
    spdlog::info("unregistered agent={}", Label(agent_id));
  }
}

absl::Duration MasterClient::heartbeat_interval() const {
  absl::MutexLock lock(&mu_);
  return heartbeat_interval_;
}

absl::Status MasterClient::CheckSession(const std::string& agent_id, absl::Status status) {
  if (absl::IsNotFound(status)) DropSession(agent_id);
  return status;
}

absl::StatusOr<v1::HeartbeatResponse> MasterClient::Heartbeat(const v1::HeartbeatRequest& request,
                                                              absl::Duration timeout) {
  auto resp = transport_->Heartbeat(request, timeout);
  if (!resp.ok()) return CheckSession(request.agent_id(), resp.status());
  return resp;
}

absl::StatusOr<v1::PullTasksResponse> MasterClient::PullTasks(const v1::PullTasksRequest& request) {
  auto resp = transport_->PullTasks(request, absl::Milliseconds(request.wait_ms()) + kPullSlack);
  if (!resp.ok()) return CheckSession(request.agent_id(), resp.status());
  return resp;
}

absl::StatusOr<v1::ReportResultsResponse> MasterClient::ReportResults(
    const v1::ReportResultsRequest& request) {
  auto resp = transport_->ReportResults(request, kRpcDeadline);
  if (!resp.ok()) return CheckSession(request.agent_id(), resp.status());
  return resp;
}

absl::StatusOr<v1::GetJobBundleResponse> MasterClient::GetJobBundle(
    const v1::GetJobBundleRequest& request) {
  return transport_->GetJobBundle(request, kRpcDeadline);
}

absl::StatusOr<v1::ShipLogsResponse> MasterClient::ShipLogs(const v1::ShipLogsRequest& request) {
  auto resp = transport_->ShipLogs(request, kRpcDeadline);
  if (!resp.ok()) return CheckSession(request.agent_id(), resp.status());
  return resp;
}

void MasterClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  transport_->CancelPulls();
}

bool MasterClient::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void MasterClient::SleepUnlessStopping(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  mu_.AwaitWithTimeout(absl::Condition(&stopping), d);
}

}  // namespace prs::agent

#include "master/master_server.h"

#include <grpcpp/alarm.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/credentials.h"
#include "common/grpc_defaults.h"
#include "common/job_state.h"
#include "common/message_limits.h"
#include "common/sizes.h"
#include "common/status_grpc.h"
#include "master/auth.h"
#include "master/executor.h"
#include "master/log_store.h"
#include "master/rpc_access.h"
#include "master/rpc_metrics.h"
#include "master/web.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "prs/v1/job_service.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {

constexpr absl::Duration kWatchPollInterval = absl::Milliseconds(250);
constexpr absl::Duration kTickInterval = absl::Milliseconds(200);
constexpr absl::Duration kTrimInterval = absl::Seconds(5);
constexpr int kMaxWaitMs = 30'000;

// Runs `fn` (which returns StatusOr<Response>) on the executor and finishes
// the reactor with its result.
template <typename Response, typename Fn>
grpc::ServerUnaryReactor* Defer(grpc::CallbackServerContext* ctx, Executor& executor,
                                Response* response, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  executor.Run([reactor, response, fn = std::move(fn)]() mutable {
    absl::StatusOr<Response> result = fn();
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

// A stream refused before it starts.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::JobStatus> {
 public:
  explicit RefusedWatch(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

class MasterServer::Impl {
 public:
  Impl(const MasterOptions& options, std::unique_ptr<JobManager> manager, Clock* clock)
      : clock_(clock),
        manager_(std::move(manager)),
        executor_(options.executor_threads),
        job_service_(this),
        agent_service_(this) {}

  absl::Status Start(const MasterOptions& options) {
    if (auto s = CheckExposure(options.listen, !options.tls.cert.empty(),
                               !options.tokens_file.empty(), options.insecure);
        !s.ok()) {
      return s;
    }
    auto credentials = MakeServerCredentials(options.tls);
    if (!credentials.ok()) return credentials.status();
    if (!options.tokens_file.empty()) {
      auto auth = Authenticator::Load(options.tokens_file);
      if (!auth.ok()) return auth.status();
      auth_ = *std::move(auth);
      spdlog::info("tokens file={} principals={}", options.tokens_file, auth_->size());
    } else if (!options.local_token.empty()) {
      auth_ = Authenticator::ForToken(options.local_token, Principal::Local());
    } else {
      spdlog::warn(
          "no --tokens: every process on this host that reaches {} may submit code and "
          "act as an agent; on a shared host give --tokens (docs/security.md)",
          options.listen);
    }
    manager_->SetWorkListener([this] { OnWork(); });
    // Called under the manager's file locks: only queues the wake.
    manager_->SetEndListener([this](const std::string& job_id) {
      executor_.Run([this, job_id] { WakeWatchers(job_id); });
    });
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen, *credentials, &port_);
    ApplyServerDefaults(builder);
    builder.RegisterService(&job_service_);
    builder.RegisterService(&agent_service_);
    builder.experimental().SetInterceptorCreators(MakeRpcCounting(manager_->metrics()));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                                 "; is another process using the port?"));
    }
    if (!options.http_listen.empty()) {
      web_ = std::make_unique<Web>(manager_.get(), auth_.get());
      auto http = StartWebServer(options, *web_);
      if (!http.ok()) return http.status();
      http_ = *std::move(http);
    }
    ticker_ = std::thread([this] { TickerMain(); });
    return absl::OkStatus();
  }

  void Shutdown() {
    if (shut_down_.exchange(true)) return;
    if (http_ != nullptr) http_->Stop();
    manager_->Stop();  // listers call back into OnWork(): stop them first
    stop_.Notify();
    if (ticker_.joinable()) ticker_.join();
    FinishAllWaiters();
    server_->Shutdown(RpcDeadline(absl::Seconds(2)));
    server_->Wait();
    done_.Notify();
  }

  void Wait() { done_.WaitForNotification(); }
  absl::Status ReloadTokens() {
    if (auth_ == nullptr) {
      return absl::FailedPreconditionError("prs-master runs without --tokens: nothing to reload");
    }
    if (auto s = auth_->Reload(); !s.ok()) return s;
    spdlog::info("tokens reloaded file={} principals={}", auth_->path(), auth_->size());
    return absl::OkStatus();
  }
  int port() const { return port_; }
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  JobManager& manager() { return *manager_; }

 private:
  // --- Who may call (docs/security.md) ------------------------------------
  // The one seam: the caller's principal, from its bearer token, when it
  // holds one of the roles `access` names and its request is within the
  // method's bound. UNAUTHENTICATED without a known token, PERMISSION_DENIED
  // with the wrong role, RESOURCE_EXHAUSTED over the bound.
  absl::StatusOr<Principal> Authorize(grpc::CallbackServerContext* ctx, const Access& access,
                                      const google::protobuf::MessageLite& request) const {
    Principal p = Principal::Local();
    if (auth_ != nullptr) {
      auto found = auth_->Authenticate(BearerToken(ctx->client_metadata()));
      if (!found.ok()) return found.status();
      p = *std::move(found);
    }
    if ((p.roles & access.roles) == 0) {
      return absl::PermissionDeniedError(absl::StrCat("'", p.name, "' (", RolesText(p.roles),
                                                      ") may not call ", access.rpc,
                                                      ": that needs the role ", access.needs));
    }
    // Within the server's one receive limit, but maybe over the method's.
    const int64_t bytes = static_cast<int64_t>(request.ByteSizeLong());
    if (bytes > access.max_request_bytes) {
      const auto [size, limit] = FormatSizeAndLimit(bytes, access.max_request_bytes);
      return absl::ResourceExhaustedError(absl::StrCat("a ", access.rpc, " request of ", size,
                                                       " is over its limit of ", limit,
                                                       " (docs/limits.md)"));
    }
    return p;
  }

  // The job's owner lets `p` see it and its logs, or with `manage`, cancel
  // or resume it (master/auth.h, Principal).
  absl::Status CheckJob(const Principal& p, const std::string& job_id, bool manage) {
    auto owner = manager_->Owner(job_id);
    if (!owner.ok()) return owner.status();
    if (manage ? p.CanManage(*owner) : p.CanSee(*owner)) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(
        "job ", job_id, " belongs to '", *owner, "'; only its owner or an admin",
        manage ? " may cancel or resume it" : " (or a reader) may see it and its logs"));
  }

  // The session is the caller's. NOT_FOUND (the agent registers again) for
  // an unknown or lost one.
  absl::StatusOr<JobManager::SessionInfo> CheckSession(const Principal& p,
                                                       const std::string& agent_id) {
    auto session = manager_->Session(agent_id);
    if (!session.ok()) return session.status();
    if (session->principal != p.name) {
      return absl::PermissionDeniedError("this agent session belongs to another identity");
    }
    return session;
  }

  // Authorizes the call, then runs `fn(principal)` on the executor and
  // finishes the call with its result.
  template <typename Response, typename Fn>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, const Access& access,
                                  const google::protobuf::MessageLite& request, Response* response,
                                  Fn fn) {
    auto principal = Authorize(ctx, access, request);
    if (!principal.ok()) {
      grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
      reactor->Finish(ToGrpcStatus(principal.status()));
      return reactor;
    }
    return Defer(ctx, executor_, response,
                 [fn = std::move(fn), p = *std::move(principal)]() mutable { return fn(p); });
  }

  // --- Long-polls -----------------------------------------------------------
  struct Waiter {
    grpc::ServerUnaryReactor* reactor;
    v1::PullTasksRequest request;
    v1::PullTasksResponse* response;
    absl::Time deadline;
  };

  grpc::ServerUnaryReactor* Pull(grpc::CallbackServerContext* ctx,
                                 const v1::PullTasksRequest* request,
                                 v1::PullTasksResponse* response) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const int wait_ms = std::clamp(request->wait_ms(), 0, kMaxWaitMs);
    Waiter w{reactor, *request, response, clock_->Now() + absl::Milliseconds(wait_ms)};
    executor_.Run([this, w]() mutable { TryWaiter(std::move(w), /*first=*/true); });
    return reactor;
  }

  // Serves a waiter now if there is work, else parks it until OnWork().
  void TryWaiter(Waiter w, bool first) {
    const int64_t epoch = work_epoch_.load();
    auto result = manager_->TryPull(w.request);
    if (!result.ok()) {
      w.reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    if (result->tasks_size() > 0 || result->stop_job_ids_size() > 0 ||
        clock_->Now() >= w.deadline || shut_down_.load()) {
      *w.response = *std::move(result);
      w.reactor->Finish(grpc::Status::OK);
      return;
    }
    {
      absl::MutexLock lock(&waiters_mu_);
      if (!waiters_closed_) {
        waiters_.push_back(std::move(w));
        w.reactor = nullptr;
      }
    }
    if (w.reactor != nullptr) {  // shutting down: answer now, nothing will later
      w.reactor->Finish(grpc::Status::OK);
      return;
    }
    // Work that arrived while we looked would otherwise wait for the next kick.
    if (work_epoch_.load() != epoch) OnWork();
  }

  void OnWork() {
    work_epoch_.fetch_add(1);
    std::list<Waiter> ready;
    {
      absl::MutexLock lock(&waiters_mu_);
      ready.swap(waiters_);
    }
    for (auto& w : ready) {
      executor_.Run([this, w = std::move(w)]() mutable { TryWaiter(std::move(w), false); });
    }
  }

  class Watcher;
  void AddWatcher(Watcher* w) {
    absl::MutexLock lock(&watchers_mu_);
    watchers_.insert(w);
  }
  void RemoveWatcher(Watcher* w) {
    absl::MutexLock lock(&watchers_mu_);
    watchers_.erase(w);
  }
  // Held while waking, so that no watcher is deleted under it (OnDone waits).
  void WakeWatchers(const std::string& job_id) {
    absl::MutexLock lock(&watchers_mu_);
    for (Watcher* w : watchers_) {
      if (w->job_id() == job_id) w->Wake();
    }
  }

  void ExpireWaiters() {
    std::list<Waiter> expired;
    const absl::Time now = clock_->Now();
    {
      absl::MutexLock lock(&waiters_mu_);
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->deadline <= now) {
          expired.splice(expired.end(), waiters_, it++);
        } else {
          ++it;
        }
      }
    }
    // A long-poll that times out returns OK with nothing.
    for (auto& w : expired) w.reactor->Finish(grpc::Status::OK);
  }

  void FinishAllWaiters() {
    std::list<Waiter> all;
    {
      absl::MutexLock lock(&waiters_mu_);
      waiters_closed_ = true;
      all.swap(waiters_);
    }
    for (auto& w : all) w.reactor->Finish(grpc::Status::OK);
  }

  void TickerMain() {
    // The loop is paced by real time; what it decides is on the clock, so a
    // test with a fake clock decides when long-polls expire and ticks run.
    absl::Time next_tick = clock_->Now();
    absl::Time next_trim = absl::Now() + kTrimInterval;
    while (!stop_.WaitForNotificationWithTimeout(kTickInterval)) {
      ExpireWaiters();
      // What a large request left in malloc's free lists goes back to the
      // system: glibc would keep it, and a refused 60 MiB spec stay resident.
      if (absl::Now() >= next_trim) {
        ::malloc_trim(0);
        next_trim = absl::Now() + kTrimInterval;
      }
      if (clock_->Now() >= next_tick) {
        manager_->Tick();
        next_tick = clock_->Now() + absl::Seconds(1);
      }
    }
  }

  // --- WatchJob -------------------------------------------------------------
  // Writes the job's status whenever it changes, polling every 250 ms with a
  // gRPC alarm, until the job ends or the client goes away. The end of the job
  // wakes it at once (WakeWatchers): `prs run` and `prs submit --wait` return
  // when the job does, not up to a poll later.
  class Watcher final : public grpc::ServerWriteReactor<v1::JobStatus> {
   public:
    Watcher(Impl* impl, std::string job_id) : impl_(impl), job_id_(std::move(job_id)) {
      impl_->AddWatcher(this);
      Poll();
    }
    const std::string& job_id() const { return job_id_; }

    // Polls now rather than at the alarm; a wake while a poll runs makes the
    // next alarm immediate. Cancel() under mu_, so that it never races Set();
    // the alarm's callback runs on gRPC's executor, never inside Cancel().
    void Wake() {
      absl::MutexLock lock(&mu_);
      woken_ = true;
      if (armed_) alarm_.Cancel();
    }

    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "watch ended by the client"));
        return;
      }
      if (last_was_terminal_) {
        Finish(grpc::Status::OK);
        return;
      }
      Arm();
    }
    void OnCancel() override { cancelled_ = true; }
    void OnDone() override {
      impl_->RemoveWatcher(this);  // no Wake() runs past this
      delete this;
    }

   private:
    void Arm() {
      absl::MutexLock lock(&mu_);
      armed_ = true;
      const absl::Duration wait = woken_ ? absl::ZeroDuration() : kWatchPollInterval;
      woken_ = false;
      alarm_.Set(RpcDeadline(wait), [this](bool) {
        {
          absl::MutexLock lock(&mu_);
          armed_ = false;
        }
        Poll();
      });
    }
    void Poll() {
      if (cancelled_ || impl_->shut_down_.load()) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
        return;
      }
      auto status = impl_->manager_->GetJob(job_id_);
      if (!status.ok()) {
        Finish(ToGrpcStatus(status.status()));
        return;
      }
      std::string bytes = status->SerializeAsString();
      if (bytes == last_sent_) {
        Arm();
        return;
      }
      last_sent_ = std::move(bytes);
      last_was_terminal_ = IsTerminal(status->state());
      current_ = *std::move(status);
      StartWrite(&current_);
    }

    Impl* const impl_;
    const std::string job_id_;
    grpc::Alarm alarm_;
    absl::Mutex mu_;
    bool armed_ ABSL_GUARDED_BY(mu_) = false;
    bool woken_ ABSL_GUARDED_BY(mu_) = false;
    v1::JobStatus current_;
    std::string last_sent_;
    bool last_was_terminal_ = false;
    std::atomic<bool> cancelled_{false};
  };

  // --- Services -------------------------------------------------------------
  class JobServiceImpl final : public v1::JobService::CallbackService {
   public:
    explicit JobServiceImpl(Impl* impl) : impl_(impl) {}
    grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* ctx,
                                        const v1::SubmitJobRequest* req,
                                        v1::SubmitJobResponse* resp) override {
      // A client that gave up (a long list_file checked at submit) gets no
      // job behind its back.
      return impl_->Serve(ctx, kSubmitJob, *req, resp,
                          [m = impl_->manager_.get(), req, ctx](const Principal& p) {
                            return m->Submit(
                                *req, [ctx] { return ctx->IsCancelled(); }, p.name);
                          });
    }
    grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                     v1::JobStatus* resp) override {
      return impl_->Serve(ctx, kGetJob, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckJob(p, req->job_id(), false); !s.ok()) {
          return absl::StatusOr<v1::JobStatus>(s);
        }
        return impl->manager_->GetJob(req->job_id());
      });
    }
    grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                       const v1::ListJobsRequest* req,
                                       v1::ListJobsResponse* resp) override {
      return impl_->Serve(
          ctx, kListJobs, *req, resp, [m = impl_->manager_.get(), req](const Principal& p) {
            v1::ListJobsResponse r;
            for (auto& j : m->ListJobs(
                     req->limit(), [&p](const std::string& owner) { return p.CanSee(owner); })) {
              *r.add_jobs() = std::move(j);
            }
            return absl::StatusOr<v1::ListJobsResponse>(std::move(r));
          });
    }
    grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                        const v1::CancelJobRequest* req,
                                        v1::JobStatus* resp) override {
      return impl_->Serve(ctx, kCancelJob, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckJob(p, req->job_id(), true); !s.ok()) {
          return absl::StatusOr<v1::JobStatus>(s);
        }
        return impl->manager_->Cancel(req->job_id());
      });
    }
    grpc::ServerUnaryReactor* ResumeJob(grpc::CallbackServerContext* ctx,
                                        const v1::ResumeJobRequest* req,
                                        v1::JobStatus* resp) override {
      return impl_->Serve(ctx, kResumeJob, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckJob(p, req->job_id(), true); !s.ok()) {
          return absl::StatusOr<v1::JobStatus>(s);
        }
        return impl->manager_->Resume(req->job_id());
      });
    }
    grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                         const v1::ListAgentsRequest* req,
                                         v1::ListAgentsResponse* resp) override {
      return impl_->Serve(ctx, kListAgents, *req, resp,
                          [m = impl_->manager_.get()](const Principal&) {
                            return absl::StatusOr<v1::ListAgentsResponse>(m->ListAgents());
                          });
    }
    grpc::ServerUnaryReactor* ListLogs(grpc::CallbackServerContext* ctx,
                                       const v1::ListLogsRequest* req,
                                       v1::ListLogsResponse* resp) override {
      return impl_->Serve(ctx, kListLogs, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckJob(p, req->job_id(), false); !s.ok()) {
          return absl::StatusOr<v1::ListLogsResponse>(s);
        }
        auto dir = impl->manager_->LogDir(req->job_id());
        if (!dir.ok()) return absl::StatusOr<v1::ListLogsResponse>(dir.status());
        return absl::StatusOr<v1::ListLogsResponse>(LogTreeListing(*dir));
      });
    }
    grpc::ServerUnaryReactor* ReadLog(grpc::CallbackServerContext* ctx,
                                      const v1::ReadLogRequest* req,
                                      v1::ReadLogResponse* resp) override {
      return impl_->Serve(ctx, kReadLog, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckJob(p, req->job_id(), false); !s.ok()) {
          return absl::StatusOr<v1::ReadLogResponse>(s);
        }
        auto dir = impl->manager_->LogDir(req->job_id());
        if (!dir.ok()) return absl::StatusOr<v1::ReadLogResponse>(dir.status());
        int64_t size = 0;
        auto data = LogStore::Read(*dir, req->path(), req->offset(), req->max_bytes(), &size);
        if (!data.ok()) return absl::StatusOr<v1::ReadLogResponse>(data.status());
        v1::ReadLogResponse r;
        r.set_data(*std::move(data));
        r.set_size(size);
        return absl::StatusOr<v1::ReadLogResponse>(std::move(r));
      });
    }
    grpc::ServerWriteReactor<v1::JobStatus>* WatchJob(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchJobRequest* req) override {
      auto principal = impl_->Authorize(ctx, kWatchJob, *req);
      if (!principal.ok()) return new RefusedWatch(principal.status());
      // The owner never changes: checked once, before the first status.
      if (auto s = impl_->CheckJob(*principal, req->job_id(), false); !s.ok()) {
        return new RefusedWatch(s);
      }
      return new Watcher(impl_, req->job_id());
    }

   private:
    Impl* const impl_;
  };

  class AgentServiceImpl final : public v1::AgentService::CallbackService {
   public:
    explicit AgentServiceImpl(Impl* impl) : impl_(impl) {}
    grpc::ServerUnaryReactor* RegisterAgent(grpc::CallbackServerContext* ctx,
                                            const v1::RegisterAgentRequest* req,
                                            v1::RegisterAgentResponse* resp) override {
      return impl_->Serve(ctx, kRegisterAgent, *req, resp,
                          [m = impl_->manager_.get(), req](const Principal& p) {
                            return m->RegisterAgent(*req, p.name);
                          });
    }
    grpc::ServerUnaryReactor* UnregisterAgent(grpc::CallbackServerContext* ctx,
                                              const v1::UnregisterAgentRequest* req,
                                              v1::UnregisterAgentResponse* resp) override {
      return impl_->Serve(
          ctx, kUnregisterAgent, *req, resp, [impl = impl_, req](const Principal& p) {
            auto session = impl->CheckSession(p, req->agent_id());
            if (!session.ok() && !absl::IsNotFound(session.status())) {
              return absl::StatusOr<v1::UnregisterAgentResponse>(session.status());
            }
            if (session.ok()) impl->manager_->UnregisterAgent(req->agent_id());
            return absl::StatusOr<v1::UnregisterAgentResponse>(v1::UnregisterAgentResponse());
          });
    }
    grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                        const v1::HeartbeatRequest* req,
                                        v1::HeartbeatResponse* resp) override {
      // Liveness is cheap and must not queue behind slow work: answer inline.
      auto* reactor = ctx->DefaultReactor();
      auto result = [&]() -> absl::StatusOr<v1::HeartbeatResponse> {
        auto p = impl_->Authorize(ctx, kHeartbeat, *req);
        if (!p.ok()) return p.status();
        if (auto s = impl_->CheckSession(*p, req->agent_id()); !s.ok()) return s.status();
        return impl_->manager_->Heartbeat(*req);
      }();
      if (result.ok()) *resp = *std::move(result);
      reactor->Finish(ToGrpcStatus(result.status()));
      return reactor;
    }
    grpc::ServerUnaryReactor* PullTasks(grpc::CallbackServerContext* ctx,
                                        const v1::PullTasksRequest* req,
                                        v1::PullTasksResponse* resp) override {
      absl::Status allowed = [&] {
        auto p = impl_->Authorize(ctx, kPullTasks, *req);
        if (!p.ok()) return p.status();
        return impl_->CheckSession(*p, req->agent_id()).status();
      }();
      if (!allowed.ok()) {
        auto* reactor = ctx->DefaultReactor();
        reactor->Finish(ToGrpcStatus(allowed));
        return reactor;
      }
      return impl_->Pull(ctx, req, resp);
    }
    grpc::ServerUnaryReactor* ReportResults(grpc::CallbackServerContext* ctx,
                                            const v1::ReportResultsRequest* req,
                                            v1::ReportResultsResponse* resp) override {
      return impl_->Serve(ctx, kReportResults, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckSession(p, req->agent_id()); !s.ok()) {
          return absl::StatusOr<v1::ReportResultsResponse>(s.status());
        }
        return impl->manager_->Report(*req);
      });
    }
    grpc::ServerUnaryReactor* ShipLogs(grpc::CallbackServerContext* ctx,
                                       const v1::ShipLogsRequest* req,
                                       v1::ShipLogsResponse* resp) override {
      return impl_->Serve(ctx, kShipLogs, *req, resp, [impl = impl_, req](const Principal& p) {
        auto session = impl->CheckSession(p, req->agent_id());
        if (!session.ok()) return absl::StatusOr<v1::ShipLogsResponse>(session.status());
        // Every path and the size are checked before anything is written: an
        // agent writes only its own node's files, never the master's
        // (user/error.txt), and a bounded amount at a time.
        int64_t bytes = 0;
        for (const auto& c : req->chunks()) bytes += static_cast<int64_t>(c.data().size());
        if (bytes > kMaxShipLogsBytes) {
          return absl::StatusOr<v1::ShipLogsResponse>(absl::InvalidArgumentError(
              absl::StrCat("ShipLogs carries ", bytes, " bytes, over the limit of ",
                           kMaxShipLogsBytes >> 20, " MiB (docs/limits.md)")));
        }
        for (const auto& c : req->chunks()) {
          if (auto s = ValidateNodeLogPath(c.path(), session->node_id); !s.ok()) {
            return absl::StatusOr<v1::ShipLogsResponse>(s);
          }
        }
        auto dir = impl->manager_->LogDirForAgent(req->agent_id(), req->job_id());
        if (!dir.ok()) return absl::StatusOr<v1::ShipLogsResponse>(dir.status());
        v1::ShipLogsResponse r;
        for (const auto& c : req->chunks()) {
          auto size = c.replace() ? impl->log_store_.Replace(*dir, c.path(), c.data())
                                  : impl->log_store_.Append(*dir, c.path(), c.offset(), c.data());
          if (!size.ok()) return absl::StatusOr<v1::ShipLogsResponse>(size.status());
          r.add_sizes(*size);
        }
        if (req->complete()) impl->manager_->LogsComplete(req->agent_id(), req->job_id());
        return absl::StatusOr<v1::ShipLogsResponse>(std::move(r));
      });
    }
    grpc::ServerUnaryReactor* GetJobBundle(grpc::CallbackServerContext* ctx,
                                           const v1::GetJobBundleRequest* req,
                                           v1::GetJobBundleResponse* resp) override {
      return impl_->Serve(ctx, kGetJobBundle, *req, resp, [impl = impl_, req](const Principal& p) {
        if (auto s = impl->CheckSession(p, req->agent_id()); !s.ok()) {
          return absl::StatusOr<v1::GetJobBundleResponse>(s.status());
        }
        return impl->manager_->GetBundle(*req);
      });
    }

   private:
    Impl* const impl_;
  };

  Clock* const clock_;
  // Null without --tokens: every caller is Principal::Local() (loopback only).
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<JobManager> manager_;
  LogStore log_store_;
  Executor executor_;
  JobServiceImpl job_service_;
  AgentServiceImpl agent_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<Web> web_;  // --http-listen: /metrics and the dashboard
  std::unique_ptr<HttpServer> http_;
  std::thread ticker_;
  absl::Notification stop_;
  absl::Notification done_;
  std::atomic<bool> shut_down_{false};
  std::atomic<int64_t> work_epoch_{0};
  absl::Mutex waiters_mu_;
  std::list<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool waiters_closed_ ABSL_GUARDED_BY(waiters_mu_) = false;
  absl::Mutex watchers_mu_;
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(watchers_mu_);
};

absl::StatusOr<std::unique_ptr<MasterServer>> MasterServer::Create(const MasterOptions& options,
                                                                   Clock* clock) {
  auto manager = JobManager::Create(options.manager, clock);
  if (!manager.ok()) return manager.status();
  auto impl = std::make_unique<Impl>(options, *std::move(manager), clock);
  if (auto s = impl->Start(options); !s.ok()) return s;
  return std::unique_ptr<MasterServer>(new MasterServer(std::move(impl)));
}

MasterServer::MasterServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MasterServer::~MasterServer() { impl_->Shutdown(); }
int MasterServer::port() const { return impl_->port(); }
int MasterServer::http_port() const { return impl_->http_port(); }
void MasterServer::Wait() { impl_->Wait(); }
void MasterServer::Shutdown() { impl_->Shutdown(); }
JobManager& MasterServer::manager() { return impl_->manager(); }
absl::Status MasterServer::ReloadTokens() { return impl_->ReloadTokens(); }

}  // namespace prs::master

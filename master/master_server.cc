#include "master/master_server.h"

#include <grpcpp/alarm.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_defaults.h"
#include "common/job_state.h"
#include "common/status_grpc.h"
#include "master/executor.h"
#include "master/log_store.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "prs/v1/job_service.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {

constexpr absl::Duration kWatchPollInterval = absl::Milliseconds(250);
constexpr absl::Duration kTickInterval = absl::Milliseconds(200);
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
    manager_->SetWorkListener([this] { OnWork(); });
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port_);
    ApplyServerDefaults(builder);
    builder.RegisterService(&job_service_);
    builder.RegisterService(&agent_service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                                 "; is another process using the port?"));
    }
    ticker_ = std::thread([this] { TickerMain(); });
    return absl::OkStatus();
  }

  void Shutdown() {
    if (shut_down_.exchange(true)) return;
    manager_->Stop();  // listers call back into OnWork(): stop them first
    stop_.Notify();
    if (ticker_.joinable()) ticker_.join();
    FinishAllWaiters();
    server_->Shutdown(RpcDeadline(absl::Seconds(2)));
    server_->Wait();
    done_.Notify();
  }

  void Wait() { done_.WaitForNotification(); }
  int port() const { return port_; }
  JobManager& manager() { return *manager_; }

 private:
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
    if (result->tasks_size() > 0 || clock_->Now() >= w.deadline || shut_down_.load()) {
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
    while (!stop_.WaitForNotificationWithTimeout(kTickInterval)) {
      ExpireWaiters();
      if (clock_->Now() >= next_tick) {
        manager_->Tick();
        next_tick = clock_->Now() + absl::Seconds(1);
      }
    }
  }

  // --- WatchJob -------------------------------------------------------------
  // Writes the job's status whenever it changes, polling every 250 ms with a
  // gRPC alarm, until the job ends or the client goes away.
  class Watcher final : public grpc::ServerWriteReactor<v1::JobStatus> {
   public:
    Watcher(Impl* impl, std::string job_id) : impl_(impl), job_id_(std::move(job_id)) { Poll(); }

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
    void OnDone() override { delete this; }

   private:
    void Arm() {
      alarm_.Set(RpcDeadline(kWatchPollInterval), [this](bool) { Poll(); });
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
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get(), req, ctx] {
        return m->Submit(*req, [ctx] { return ctx->IsCancelled(); });
      });
    }
    grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                     v1::JobStatus* resp) override {
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->GetJob(req->job_id()); });
    }
    grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                       const v1::ListJobsRequest* req,
                                       v1::ListJobsResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get(), req] {
        v1::ListJobsResponse r;
        for (auto& j : m->ListJobs(req->limit())) *r.add_jobs() = std::move(j);
        return absl::StatusOr<v1::ListJobsResponse>(std::move(r));
      });
    }
    grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                        const v1::CancelJobRequest* req,
                                        v1::JobStatus* resp) override {
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->Cancel(req->job_id()); });
    }
    grpc::ServerUnaryReactor* ResumeJob(grpc::CallbackServerContext* ctx,
                                        const v1::ResumeJobRequest* req,
                                        v1::JobStatus* resp) override {
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->Resume(req->job_id()); });
    }
    grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                         const v1::ListAgentsRequest* req,
                                         v1::ListAgentsResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get()] {
        return absl::StatusOr<v1::ListAgentsResponse>(m->ListAgents());
      });
    }
    grpc::ServerUnaryReactor* ListLogs(grpc::CallbackServerContext* ctx,
                                       const v1::ListLogsRequest* req,
                                       v1::ListLogsResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get(), req] {
        auto dir = m->LogDir(req->job_id());
        if (!dir.ok()) return absl::StatusOr<v1::ListLogsResponse>(dir.status());
        v1::ListLogsResponse r;
        r.set_log_dir(*dir);
        for (const auto& f : LogStore::List(*dir)) {
          auto* file = r.add_files();
          file->set_path(f.path);
          file->set_size(f.size);
        }
        return absl::StatusOr<v1::ListLogsResponse>(std::move(r));
      });
    }
    grpc::ServerUnaryReactor* ReadLog(grpc::CallbackServerContext* ctx,
                                      const v1::ReadLogRequest* req,
                                      v1::ReadLogResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get(), req] {
        auto dir = m->LogDir(req->job_id());
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
      return new Watcher(impl_, req->job_id());
    }

   private:
    Impl* const impl_;
  };

  class AgentServiceImpl final : public v1::AgentService::CallbackService {
   public:
    explicit AgentServiceImpl(Impl* impl) : impl_(impl) {}
    grpc::ServerUnaryReactor* UnregisterAgent(grpc::CallbackServerContext* ctx,
                                              const v1::UnregisterAgentRequest* req,
                                              v1::UnregisterAgentResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [m = impl_->manager_.get(), req] {
        m->UnregisterAgent(req->agent_id());
        return absl::StatusOr<v1::UnregisterAgentResponse>(v1::UnregisterAgentResponse());
      });
    }
    grpc::ServerUnaryReactor* RegisterAgent(grpc::CallbackServerContext* ctx,
                                            const v1::RegisterAgentRequest* req,
                                            v1::RegisterAgentResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->RegisterAgent(*req); });
    }
    grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                        const v1::HeartbeatRequest* req,
                                        v1::HeartbeatResponse* resp) override {
      // Liveness is cheap and must not queue behind slow work: answer inline.
      auto* reactor = ctx->DefaultReactor();
      auto result = impl_->manager_->Heartbeat(*req);
      if (result.ok()) *resp = *std::move(result);
      reactor->Finish(ToGrpcStatus(result.status()));
      return reactor;
    }
    grpc::ServerUnaryReactor* PullTasks(grpc::CallbackServerContext* ctx,
                                        const v1::PullTasksRequest* req,
                                        v1::PullTasksResponse* resp) override {
      return impl_->Pull(ctx, req, resp);
    }
    grpc::ServerUnaryReactor* ReportResults(grpc::CallbackServerContext* ctx,
                                            const v1::ReportResultsRequest* req,
                                            v1::ReportResultsResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->Report(*req); });
    }
    grpc::ServerUnaryReactor* ShipLogs(grpc::CallbackServerContext* ctx,
                                       const v1::ShipLogsRequest* req,
                                       v1::ShipLogsResponse* resp) override {
      return Defer(ctx, impl_->executor_, resp, [impl = impl_, req] {
        // Every path is checked before anything is written.
        for (const auto& c : req->chunks()) {
          if (auto s = ValidateShippedLogPath(c.path()); !s.ok()) {
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
      return Defer(ctx, impl_->executor_, resp,
                   [m = impl_->manager_.get(), req] { return m->GetBundle(*req); });
    }

   private:
    Impl* const impl_;
  };

  Clock* const clock_;
  std::unique_ptr<JobManager> manager_;
  LogStore log_store_;
  Executor executor_;
  JobServiceImpl job_service_;
  AgentServiceImpl agent_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread ticker_;
  absl::Notification stop_;
  absl::Notification done_;
  std::atomic<bool> shut_down_{false};
  std::atomic<int64_t> work_epoch_{0};
  absl::Mutex waiters_mu_;
  std::list<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool waiters_closed_ ABSL_GUARDED_BY(waiters_mu_) = false;
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
void MasterServer::Wait() { impl_->Wait(); }
void MasterServer::Shutdown() { impl_->Shutdown(); }
JobManager& MasterServer::manager() { return impl_->manager(); }

}  // namespace prs::master

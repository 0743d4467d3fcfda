#include "master/rpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace prs::master {
namespace {

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(const char* method, RpcCounts* counts)
      : method_(method != nullptr ? method : ""), counts_(counts) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      counts_->Count(absl::StripPrefix(method_, "/"), methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  RpcCounts* const counts_;
};

class CountingFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingFactory(RpcCounts* counts) : counts_(counts) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CountingInterceptor(info->method(), counts_);
  }

 private:
  RpcCounts* const counts_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> MakeRpcCounting(
    MasterMetrics& metrics) {
  std::vector<std::string> methods;
  for (const char* service : {"prs.v1.JobService", "prs.v1.AgentService"}) {
    const auto* d = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int i = 0; d != nullptr && i < d->method_count(); ++i) {
      methods.push_back(absl::StrCat(service, "/", d->method(i)->name()));
    }
  }
  // Health (grpc_health_probe, load balancers) and reflection (grpcurl).
  for (const char* m : {"grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch",
                        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    methods.emplace_back(m);
  }
  metrics.rpcs = std::make_unique<RpcCounts>(methods);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<CountingFactory>(metrics.rpcs.get()));
  return out;
}

}  // namespace prs::master

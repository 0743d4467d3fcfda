#ifndef PRS_MASTER_RPC_METRICS_H_
#define PRS_MASTER_RPC_METRICS_H_

// Counts every gRPC call the master answers, by method and status code
// (prs_grpc_requests_total on /metrics), with a server interceptor: one seam
// for every service, the health and reflection ones included.

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "master/metrics.h"

namespace prs::master {

// Sets `metrics.rpcs` to the methods of the services the master serves and
// returns the interceptor factories that count into it (for
// ServerBuilder::experimental().SetInterceptorCreators).
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> MakeRpcCounting(
    MasterMetrics& metrics);

}  // namespace prs::master

#endif  // PRS_MASTER_RPC_METRICS_H_

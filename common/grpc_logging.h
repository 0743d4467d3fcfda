#ifndef PRS_COMMON_GRPC_LOGGING_H_
#define PRS_COMMON_GRPC_LOGGING_H_

// gRPC's own log lines (a failed TLS handshake: "E1201 ...
// ssl_transport_security.cc:1501] Handshake failed ...") into spdlog. No gRPC
// header here: the mains include it; prs_common_grpc implements it
// (grpc_defaults.cc).

#include "spdlog/common.h"

namespace prs {

// From now on gRPC's log lines go to spdlog's default logger, its errors at
// `errors_at` and the rest at debug, instead of raw to stderr: the CLI says
// what such a failure means itself (at debug they show with --log-level
// debug); a daemon keeps them as warnings in its log.
void RouteGrpcLogsToSpdlog(spdlog::level::level_enum errors_at);

}  // namespace prs

#endif  // PRS_COMMON_GRPC_LOGGING_H_

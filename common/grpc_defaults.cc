#include "common/grpc_defaults.h"

#include <grpc/support/log.h>
#include <grpcpp/resource_quota.h>

#include <atomic>
#include <string>

#include "absl/strings/ascii.h"
#include "common/grpc_logging.h"
#include "common/message_limits.h"
#include "spdlog/spdlog.h"

namespace prs {

grpc::ChannelArguments DefaultChannelArguments(absl::Duration initial_backoff) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReplyBytes);
  args.SetMaxSendMessageSize(static_cast<int>(kMaxRequestBytes));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Straight to the master: a bearer token allowed in clear text to loopback
  // must not go to an HTTP proxy from the environment instead.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  if (initial_backoff > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(initial_backoff)));
  }
  return args;
}

namespace {

std::atomic<spdlog::level::level_enum> grpc_errors_at{spdlog::level::warn};

void LogGrpcLine(gpr_log_func_args* args) {
  const auto level =
      args->severity == GPR_LOG_SEVERITY_ERROR ? grpc_errors_at.load() : spdlog::level::debug;
  spdlog::log(level, "grpc: {} ({}:{})", std::string(absl::StripAsciiWhitespace(args->message)),
              args->file, args->line);
}

}  // namespace

void RouteGrpcLogsToSpdlog(spdlog::level::level_enum errors_at) {
  grpc_errors_at.store(errors_at);
  gpr_set_log_function(LogGrpcLine);
}

void ApplyServerDefaults(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxRequestBytes));
  builder.SetMaxSendMessageSize(kMaxReplyBytes);
  // gRPC 1.51 checks the receive limit only once a message has arrived whole
  // (grpc/grpc#43012): a client that declares 4 GiB is read to the end. The
  // memory quota bounds what the transport buffers: over it, gRPC cancels a
  // stream of the transport it reclaims from, picked at random (possibly
  // another caller's, which retries): RESOURCE_EXHAUSTED, ENHANCE_YOUR_CALM.
  grpc::ResourceQuota quota("prs-master");
  quota.Resize(static_cast<size_t>(kServerMemoryQuotaBytes));
  builder.SetResourceQuota(quota);
}

}  // namespace prs

#include "common/grpc_defaults.h"

namespace prs {

grpc::ChannelArguments DefaultChannelArguments(absl::Duration initial_backoff) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
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

void ApplyServerDefaults(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
}

}  // namespace prs

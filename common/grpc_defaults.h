#ifndef PRS_COMMON_GRPC_DEFAULTS_H_
#define PRS_COMMON_GRPC_DEFAULTS_H_

// The one place for what every prs channel and server shares: message size
// limits, reconnect backoff, and deadlines.

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>

#include "absl/time/time.h"

namespace prs {

// The largest reply a client of the master takes: a PullTasks reply (kept to
// max_pull_reply_bytes, or one mini-batch of up to max_task_bytes), a job
// bundle. What the master itself receives is bounded per RPC, far lower
// (common/message_limits.h).
inline constexpr int kMaxReplyBytes = 512 << 20;

// Channel arguments for a client of the master: the message limits, and a
// quick reconnect after a master restart (`initial_backoff` for the first
// retry; zero keeps gRPC's default).
grpc::ChannelArguments DefaultChannelArguments(
    absl::Duration initial_backoff = absl::ZeroDuration());

// The message limits on the master's server: it receives at most
// kMaxRequestBytes (common/message_limits.h), the largest request of any
// method, so a larger one is refused before it is parsed.
void ApplyServerDefaults(grpc::ServerBuilder& builder);

// A deadline `timeout` from now for a ClientContext or an alarm. gRPC's
// deadlines are on the system clock, never a test's fake clock.
inline std::chrono::system_clock::time_point RpcDeadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
}

}  // namespace prs

#endif  // PRS_COMMON_GRPC_DEFAULTS_H_

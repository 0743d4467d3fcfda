#include "common/status_grpc.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/text.h"

namespace prs {

// The canonical codes have the same numbers in both libraries. A message may
// quote a path or a script's error, which need not be UTF-8: it is sanitized
// here, once, so that every client can show it.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), SanitizeUtf8(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  std::string message = status.error_message();
  if (message.empty()) {
    // gRPC gives no text for some failures of its own (a message it could not
    // serialize or parse, a stream reset): name the code at least.
    message = absl::StrCat("the call failed with gRPC status ", status.error_code(),
                           " and no message; see the master's log");
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
}

}  // namespace prs

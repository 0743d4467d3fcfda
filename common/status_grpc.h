#ifndef PRS_COMMON_STATUS_GRPC_H_
#define PRS_COMMON_STATUS_GRPC_H_

// The one seam between absl::Status and grpc::Status.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace prs {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace prs

#endif  // PRS_COMMON_STATUS_GRPC_H_

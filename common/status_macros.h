// Status propagation macros shared by common/: one spelling of "return the
// error, if any", in place of a local macro per file.
#ifndef PRS_COMMON_STATUS_MACROS_H_
#define PRS_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing
// function when it is not OK. Works in functions returning absl::Status or
// absl::StatusOr<T>.
#define PRS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    const absl::Status prs_status_ = (expr);   \
    if (!prs_status_.ok()) return prs_status_; \
  } while (false)

#endif  // PRS_COMMON_STATUS_MACROS_H_

#ifndef PRS_COMMON_LOGGING_H_
#define PRS_COMMON_LOGGING_H_

#include <string>

namespace prs {

// Sets up spdlog's default logger on stderr with `name` in each line and the
// given level (trace, debug, info, warn, error, off). Call once from main.
void SetUpLogging(const std::string& name, const std::string& level);

}  // namespace prs

#endif  // PRS_COMMON_LOGGING_H_

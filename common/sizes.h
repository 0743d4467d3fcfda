// Names and sizes a user writes in a job file: the job name, mini_batch_size
// and append_row_file_name, with ParallelRunStep's rules.
//
// Every function here is pure and thread-safe. Errors are INVALID_ARGUMENT
// and their message names the job-file key and says how to fix the value.
#ifndef PRS_COMMON_SIZES_H_
#define PRS_COMMON_SIZES_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prs {

// Checks a job name: 3-32 characters matching ^[a-z]([-a-z0-9]*[a-z0-9])?$
// (lowercase letters, digits and '-', starting with a letter, not ending with
// '-'). Returns OK or INVALID_ARGUMENT saying which part of the rule failed,
// with an example such as "predict-digits".
absl::Status ValidateJobName(absl::string_view name);

// A parsed mini_batch_size.
struct MiniBatchSize {
  enum Kind {
    kCount,  // "10": a number of files (file inputs).
    kBytes,  // "1MB": approximate bytes per mini-batch (tabular inputs).
    kRows,   // "5000 rows": rows per mini-batch (tabular inputs).
  };
  Kind kind = kCount;
  // Always positive. For kBytes, already multiplied out (1KB = 1024).
  int64_t value = 0;
};

// Parses a mini_batch_size as a user writes it. Surrounding whitespace is
// ignored.
//   "10"                      -> {kCount, 10}
//   "512KB", "1mb", "2GB"     -> {kBytes, 512 << 10}, ... (powers of 1024;
//                                ParallelRunStep's ^\d+([kKmMgG][bB])*$ but
//                                with at most one unit; a bare "B" is refused)
//   "5000 rows", "1 row", "5000rows" -> {kRows, 5000}, ...
// Returns INVALID_ARGUMENT for garbage ("mini_batch_size: '10XB' is not a
// size; use a count like 10 or a size like 1MB"), for zero or negative values,
// and for values that overflow int64.
absl::StatusOr<MiniBatchSize> ParseMiniBatchSize(absl::string_view text);

// Checks append_row_file_name: not empty, not "." or "..", and free of the
// characters ParallelRunStep refuses (~"#%&*:<>?/\{|}) and of control
// characters. Returns OK or INVALID_ARGUMENT naming the offending character.
absl::Status ValidateFileName(absl::string_view name);

// Formats a byte count for messages with 1024-based units: "512 B",
// "1.5 KB", "64 MB", "2.3 GB". Negative counts are formatted as "0 B".
std::string FormatBytes(int64_t bytes);

// `size` and `limit` for "X is over its limit of Y": as FormatBytes, or in
// bytes when the two would read the same ("17 MB is over 17 MB").
std::pair<std::string, std::string> FormatSizeAndLimit(int64_t size, int64_t limit);

}  // namespace prs

#endif  // PRS_COMMON_SIZES_H_

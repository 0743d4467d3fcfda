#ifndef PRS_COMMON_FRAME_H_
#define PRS_COMMON_FRAME_H_

// The framed protocol between an agent and its workers (docs/worker-protocol.md):
// uint32 big-endian length, uint8 type, then fields of uint32 length + bytes.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prs {

enum class FrameType : uint8_t {
  kRun = 1,
  kShutdown = 2,
  kReady = 64,
  kInitFailed = 65,
  kResult = 66,
  kBye = 67,
};

// Frames larger than this are refused as corrupt.
inline constexpr uint32_t kMaxFrameBytes = 1u << 30;

struct Frame {
  FrameType type = FrameType::kRun;
  std::vector<std::string> fields;
};

// Serializes a frame.
std::string EncodeFrame(const Frame& frame);

// Splits a byte stream into frames. Not thread-safe.
class FrameDecoder {
 public:
  void Append(absl::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }
  // The next complete frame, std::nullopt if more bytes are needed, or
  // INVALID_ARGUMENT / DATA_LOSS when the stream is corrupt.
  absl::StatusOr<std::optional<Frame>> Next();

 private:
  std::string buffer_;
  size_t offset_ = 0;
};

// Writes all of `frame` to a blocking fd. UNAVAILABLE when the peer is gone.
absl::Status WriteFrame(int fd, const Frame& frame);

}  // namespace prs

#endif  // PRS_COMMON_FRAME_H_

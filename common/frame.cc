#include "common/frame.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace prs {
namespace {

void PutU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

bool KnownType(uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kRun:
    case FrameType::kShutdown:
    case FrameType::kReady:
    case FrameType::kInitFailed:
    case FrameType::kResult:
    case FrameType::kBye:
      return true;
  }
  return false;
}

}  // namespace

std::string EncodeFrame(const Frame& frame) {
  size_t body = 1;
  for (const auto& f : frame.fields) body += 4 + f.size();
  std::string out;
  out.reserve(4 + body);
  PutU32(out, static_cast<uint32_t>(body));
  out.push_back(static_cast<char>(frame.type));
  for (const auto& f : frame.fields) {
    PutU32(out, static_cast<uint32_t>(f.size()));
    out.append(f);
  }
  return out;
}

absl::StatusOr<std::optional<Frame>> FrameDecoder::Next() {
  const size_t avail = buffer_.size() - offset_;
  if (avail < 4) return std::nullopt;
  const char* p = buffer_.data() + offset_;
  const uint32_t len = GetU32(p);
  if (len == 0 || len > kMaxFrameBytes) {
    return absl::DataLossError(absl::StrCat("worker frame of ", len, " bytes is corrupt"));
  }
  if (avail - 4 < len) return std::nullopt;
  const char* body = p + 4;
  const uint8_t type = static_cast<uint8_t>(body[0]);
  if (!KnownType(type)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown worker frame type ", int{type}));
  }
  Frame frame;
  frame.type = static_cast<FrameType>(type);
  size_t pos = 1;
  while (pos < len) {
    if (len - pos < 4) return absl::DataLossError("truncated field length in worker frame");
    const uint32_t flen = GetU32(body + pos);
    pos += 4;
    if (len - pos < flen) return absl::DataLossError("truncated field in worker frame");
    frame.fields.emplace_back(body + pos, flen);
    pos += flen;
  }
  offset_ += 4 + len;
  // Compact once the consumed prefix dominates, keeping appends amortized O(1).
  if (offset_ > (1u << 16) && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return frame;
}

absl::Status WriteFrame(int fd, const Frame& frame) {
  const std::string bytes = EncodeFrame(frame);
  size_t done = 0;
  while (done < bytes.size()) {
    // MSG_NOSIGNAL: a dead worker must surface as an error, not SIGPIPE.
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("writing to worker: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace prs

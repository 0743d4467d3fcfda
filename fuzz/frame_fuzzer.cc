// The worker frame codec (common/frame.h) on any byte stream.
//
// Checks: FrameDecoder gives the same frames and ends in the same state
// (needs more bytes, or the same error) whether the stream arrives whole, a
// byte at a time or in pieces of sizes drawn from the data; every frame it
// gives is the bytes it consumed (EncodeFrame of it gives them back), and
// decodes again to itself; a stream of whole frames repeated past the
// decoder's compaction point (64 KiB consumed) decodes to the frames repeated.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/frame.h"
#include "fuzz/fuzz_util.h"

namespace {

bool SameFrame(const prs::Frame& a, const prs::Frame& b) {
  return a.type == b.type && a.fields == b.fields;
}

// What a decoder made of a stream: the frames, and how it stopped (OK: it
// needs more bytes).
struct Decoded {
  std::vector<prs::Frame> frames;
  absl::Status end;
};

// Drains `decoder` into `out`; false once it reported an error.
bool Drain(prs::FrameDecoder& decoder, Decoded& out) {
  while (true) {
    absl::StatusOr<std::optional<prs::Frame>> next = decoder.Next();
    if (!next.ok()) {
      out.end = next.status();
      // A corrupt stream stays corrupt: the decoder does not skip ahead.
      PRS_FUZZ_CHECK(decoder.Next().status() == out.end);
      return false;
    }
    if (!next->has_value()) return true;
    out.frames.push_back(**next);
  }
}

// Feeds `stream` in pieces of the sizes `piece` gives (each >= 1).
template <typename PieceSize>
Decoded DecodeInPieces(absl::string_view stream, PieceSize piece) {
  prs::FrameDecoder decoder;
  Decoded out;
  size_t pos = 0;
  while (pos < stream.size()) {
    const size_t n = std::min(piece(), stream.size() - pos);
    decoder.Append(stream.substr(pos, n));
    pos += n;
    if (!Drain(decoder, out)) break;
  }
  return out;
}

void CheckSame(const Decoded& a, const Decoded& b) {
  PRS_FUZZ_CHECK(a.end == b.end);
  PRS_FUZZ_CHECK(a.frames.size() == b.frames.size());
  for (size_t i = 0; i < a.frames.size(); ++i) PRS_FUZZ_CHECK(SameFrame(a.frames[i], b.frames[i]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view stream(reinterpret_cast<const char*>(data), size);

  prs::FrameDecoder whole_decoder;
  whole_decoder.Append(stream);
  Decoded whole;
  Drain(whole_decoder, whole);
  PRS_FUZZ_CHECK(whole.end.ok() || whole.end.code() == absl::StatusCode::kInvalidArgument ||
                 whole.end.code() == absl::StatusCode::kDataLoss);

  // Frames are canonical: each one is exactly the bytes it came from.
  size_t consumed = 0;
  for (const prs::Frame& frame : whole.frames) {
    const std::string bytes = prs::EncodeFrame(frame);
    PRS_FUZZ_CHECK(stream.substr(consumed, bytes.size()) == bytes);
    consumed += bytes.size();
    prs::FrameDecoder again;
    again.Append(bytes);
    absl::StatusOr<std::optional<prs::Frame>> decoded = again.Next();
    PRS_FUZZ_CHECK(decoded.ok() && decoded->has_value() && SameFrame(**decoded, frame));
    decoded = again.Next();
    PRS_FUZZ_CHECK(decoded.ok() && !decoded->has_value());
  }
  PRS_FUZZ_CHECK(consumed <= size);

  if (size <= 4096) CheckSame(whole, DecodeInPieces(stream, [] { return size_t{1}; }));
  // Piece sizes from a generator seeded by the data, so they change with it.
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint8_t byte : stream) state = (state ^ byte) * 0x100000001b3ull;
  CheckSame(whole, DecodeInPieces(stream, [&state] {
              state ^= state << 13;
              state ^= state >> 7;
              state ^= state << 17;
              return size_t{1} + (state % 64 == 0 ? state % 5000 : state % 17);
            }));

  // Whole frames only: repeat them past the compaction threshold, and once more.
  if (whole.end.ok() && consumed == size && !whole.frames.empty()) {
    constexpr size_t kCompactsAfter = size_t{1} << 16;
    prs::FrameDecoder decoder;
    size_t copies = 0;
    size_t decoded = 0;
    for (size_t fed = 0; fed <= kCompactsAfter + size; fed += size) {
      decoder.Append(stream);
      ++copies;
      while (true) {
        absl::StatusOr<std::optional<prs::Frame>> next = decoder.Next();
        PRS_FUZZ_CHECK(next.ok());
        if (!next->has_value()) break;
        PRS_FUZZ_CHECK(SameFrame(**next, whole.frames[decoded % whole.frames.size()]));
        ++decoded;
      }
    }
    PRS_FUZZ_CHECK(decoded == copies * whole.frames.size());
  }
  return 0;
}

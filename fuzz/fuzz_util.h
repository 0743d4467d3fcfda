// What the fuzz targets share: the libFuzzer entry point's declaration and a
// check that stays on in release builds. A scratch folder is the unit tests'
// prs::testing::TempDir (tests/unit/test_util.h).
//
// The targets are built two ways (fuzz/CMakeLists.txt): with clang and
// libFuzzer when PRS_FUZZ is ON, and with any compiler and
// fuzz/replay_main.cc, which runs the committed corpus as a ctest. So they
// hold no clang-only code.
#ifndef PRS_FUZZ_FUZZ_UTIL_H_
#define PRS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace prs::fuzz {

[[noreturn]] inline void CheckFailed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, condition);
  std::abort();
}

// Like assert(), but active whatever NDEBUG says: a broken promise is a crash
// for libFuzzer and a failed replay test.
#define PRS_FUZZ_CHECK(condition)                                               \
  do {                                                                          \
    if (!(condition)) ::prs::fuzz::CheckFailed(#condition, __FILE__, __LINE__); \
  } while (0)

}  // namespace prs::fuzz

#endif  // PRS_FUZZ_FUZZ_UTIL_H_

// What the fuzz targets share: the libFuzzer entry point's declaration, a
// check that stays on in release builds, and a scratch folder.
//
// The targets are built two ways (fuzz/CMakeLists.txt): with clang and
// libFuzzer when PRS_FUZZ is ON, and with any compiler and
// fuzz/replay_main.cc, which runs the committed corpus as a ctest. So they
// hold no clang-only code.
#ifndef PRS_FUZZ_FUZZ_UTIL_H_
#define PRS_FUZZ_FUZZ_UTIL_H_

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

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

// A fresh folder under the system temp folder, made once per process and
// removed with everything in it at exit. A crash leaves it behind.
class ScratchDir {
 public:
  explicit ScratchDir(const char* name) {
    std::string pattern = (std::filesystem::temp_directory_path() / name).string() + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace prs::fuzz

#endif  // PRS_FUZZ_FUZZ_UTIL_H_

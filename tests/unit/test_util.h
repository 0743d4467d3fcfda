#ifndef PRS_TESTS_UNIT_TEST_UTIL_H_
#define PRS_TESTS_UNIT_TEST_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace prs::testing {

// A fresh folder under the system temp folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("prs-unit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
             std::to_string(std::rand()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `relative` inside the folder.
  std::string Sub(const std::string& relative) const { return (path_ / relative).string(); }
  // Writes `content` to `relative` with `mode`, creating folders.
  std::filesystem::path Write(const std::string& relative, const std::string& content,
                              mode_t mode = 0644) const {
    const std::filesystem::path file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << content;
    ::chmod(file.c_str(), mode);
    return file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace prs::testing

#endif  // PRS_TESTS_UNIT_TEST_UTIL_H_

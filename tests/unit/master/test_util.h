#ifndef PRS_TESTS_UNIT_MASTER_TEST_UTIL_H_
#define PRS_TESTS_UNIT_MASTER_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace prs::testing {

// A fresh folder under the system temp folder, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("prs-unit-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string Sub(const std::string& rel) const { return (path_ / rel).string(); }
  void Write(const std::string& rel, const std::string& content) const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace prs::testing

#endif  // PRS_TESTS_UNIT_MASTER_TEST_UTIL_H_

// Runs a fuzz target on every file under the folders (or files) given as
// arguments, and on the empty input, as libFuzzer does with its corpus. Built
// without libFuzzer, with the project's ordinary compiler: each corpus in
// fuzz/corpus/ is a ctest (fuzz/CMakeLists.txt). A failed check aborts, which
// fails the test; finding no input at all fails it too.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "fuzz/fuzz_util.h"

namespace {

namespace fs = std::filesystem;

// Every regular file under `root` (or `root` itself), sorted.
std::vector<fs::path> Inputs(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code error;
  if (fs::is_regular_file(root, error)) return {root};
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code ignored;
    if (it->is_regular_file(ignored)) files.push_back(it->path());
  }
  if (error) std::fprintf(stderr, "cannot list %s: %s\n", root.c_str(), error.message().c_str());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs the target on exactly `bytes`, in a buffer of that size, so that a
// sanitizer sees a read past the end.
void Run(const std::string& bytes) {
  std::unique_ptr<uint8_t[]> data(new uint8_t[bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), data.get());
  LLVMFuzzerTestOneInput(data.get(), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  Run("");
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    for (const fs::path& file : Inputs(argv[i])) {
      std::ifstream in(file, std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      if (in.bad()) {
        std::fprintf(stderr, "cannot read %s\n", file.c_str());
        return 1;
      }
      Run(bytes);
      ++count;
    }
  }
  std::printf("%s: ran %zu inputs (and the empty one)\n", argv[0], count);
  if (count == 0) {
    std::fprintf(stderr, "no inputs found: a corpus folder is missing or empty\n");
    return 1;
  }
  return 0;
}

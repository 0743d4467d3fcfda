#include "master/input_fingerprint.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace prs::master {

InputFingerprint::InputFingerprint() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}

InputFingerprint::~InputFingerprint() {
  EVP_MD_CTX_free(ctx_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

int InputFingerprint::StatInput(const std::string& path, struct stat* st) {
  const size_t slash = path.rfind('/');
  // No folder part, a file in "/", or a trailing '/' (a folder named in a
  // list file): the plain stat().
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) {
    return ::stat(path.c_str(), st);
  }
  const absl::string_view dir(path.data(), slash + 1);
  if (dir != dir_) {
    if (dir_fd_ >= 0) ::close(dir_fd_);
    dir_.assign(dir.data(), dir.size());
    dir_fd_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  if (dir_fd_ < 0) return ::stat(path.c_str(), st);
  return ::fstatat(dir_fd_, path.c_str() + slash + 1, st, 0);
}

void InputFingerprint::Update(absl::string_view bytes) {
  EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
}

void InputFingerprint::Add(const NewTask& task, bool tabular) {
  Update(absl::StrCat("task ", task.items.size(), "\n"));
  for (const std::string& item : task.items) {
    // Lengths first, so that no two sequences of items hash alike.
    Update(absl::StrCat(item.size(), ":"));
    Update(item);
    if (tabular) continue;  // a descriptor carries its file's version
    struct stat st {};
    if (StatInput(item, &st) != 0) {
      Update(" -1\n");
    } else {
      Update(absl::StrCat(" ", st.st_size, " ",
                          int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, "\n"));
    }
  }
}

absl::Status InputFingerprint::AddDependencies(const v1::JobSpec& spec) {
  namespace fs = std::filesystem;
  const auto add_file = [&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    Update(absl::StrCat(path.size(), ":", path, " ", st.st_size, " ",
                        int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, "\n"));
    return true;
  };
  for (const auto& side : spec.side_inputs()) {
    Update(absl::StrCat("side ", side.name(), "\n"));
    std::error_code ec;
    if (!fs::is_directory(side.path(), ec)) {
      if (!add_file(side.path())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "side input '", side.name(), "' (", side.path(), ") cannot be read on the master"));
      }
      continue;
    }
    std::vector<std::string> files;
    for (fs::recursive_directory_iterator it(side.path(), ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code fec;
      if (it->is_regular_file(fec)) files.push_back(it->path().string());
    }
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "side input '", side.name(), "' cannot be listed on the master: ", ec.message()));
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add_file(f);
  }
  const std::string& python = spec.environment().python();
  if (!python.empty() && python.front() == '/') add_file(python);
  return absl::OkStatus();
}

std::string InputFingerprint::Finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_, digest, &n);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

}  // namespace prs::master

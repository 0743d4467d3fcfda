#include "common/paths.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace prs {
namespace fs = std::filesystem;

std::string ExecutableDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return exe.parent_path().string();
}

absl::StatusOr<std::string> FindPythonRuntimeDir() {
  const fs::path installed = fs::path(ExecutableDir()) / ".." / PRS_INSTALL_PYTHON_DIR;
  const fs::path candidates[] = {installed, fs::path(PRS_SOURCE_PYTHON_DIR)};
  for (const auto& dir : candidates) {
    std::error_code ec;
    if (fs::exists(dir / "prs" / "_worker.py", ec)) return fs::weakly_canonical(dir, ec).string();
  }
  return absl::NotFoundError(absl::StrCat("the prs Python runtime is neither at ",
                                          installed.string(), " nor at ", PRS_SOURCE_PYTHON_DIR,
                                          "; reinstall prs (cmake --install)"));
}

std::string DefaultWorkerPython() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot rename to ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status AppendToFile(const std::string& path, absl::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    if (auto s = MakeDirs(fs::path(path).parent_path().string()); !s.ok()) return s;
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot append to ", path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      // All or nothing, so that the caller can simply try again: cut off the
      // part written (the file's one writer is this process).
      struct stat st {};
      if (done > 0 && ::fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(done)) {
        (void)!::ftruncate(fd, st.st_size - static_cast<off_t>(done));
      }
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot append to ", path, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot append to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::string PrimaryIp() {
  struct ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return "127.0.0.1";
  std::string ip = "127.0.0.1";
  for (auto* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_LOOPBACK) != 0 || (i->ifa_flags & IFF_UP) == 0) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<struct sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) != nullptr) {
      ip = buf;
      break;
    }
  }
  ::freeifaddrs(ifs);
  return ip;
}

}  // namespace prs

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

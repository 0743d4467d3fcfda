#ifndef PRS_MASTER_AUTH_H_
#define PRS_MASTER_AUTH_H_

// Who may call the master (docs/security.md): principals, their roles, and
// the bearer tokens that name them. No gRPC here: the server's one seam
// (master_server.cc, Authorize) reads the token from the call's metadata and
// asks the Authenticator.

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace prs::master {

// What a principal may do. A principal may hold several.
enum class Role : uint32_t {
  kSubmit = 1,  // submit jobs; see, cancel, resume and read the logs of its own
  kRead = 2,    // see every job and its logs, and the agents
  kAdmin = 4,   // everything a client may do, on every job
  kAgent = 8,   // the AgentService only
};

struct Principal {
  std::string name;
  uint32_t roles = 0;

  bool Has(Role role) const { return (roles & static_cast<uint32_t>(role)) != 0; }
  bool admin() const { return Has(Role::kAdmin); }
  // Sees (and reads the logs of) a job owned by `owner`.
  bool CanSee(const std::string& owner) const {
    return admin() || Has(Role::kRead) || (Has(Role::kSubmit) && owner == name);
  }
  // Cancels or resumes a job owned by `owner`.
  bool CanManage(const std::string& owner) const {
    return admin() || (Has(Role::kSubmit) && owner == name);
  }
  // Every role: the caller of a master without tokens (loopback only), and
  // the master's own calls.
  static Principal Local();
};

// 128 random bits as 32 hex characters, from the system's CSPRNG: session
// and lease ids, which must not be guessable.
std::string RandomId();

// "submit,read" → roles; INVALID_ARGUMENT naming an unknown role.
absl::StatusOr<uint32_t> ParseRoles(absl::string_view text);
// "submit,read".
std::string RolesText(uint32_t roles);
// The SHA-256 of a token as the tokens file holds it: "sha256:<64 hex>".
std::string HashToken(absl::string_view token);

// The principals of a tokens file, one per line:
//   sha256:<64 hex: SHA-256 of the token>  <principal>  <role>[,<role>...]
// with blank lines and `#` comments. Only hashes are kept: the file and the
// master's memory never hold a token. Thread-safe; Reload() swaps the table
// only when the whole file is valid (a typo never locks everyone out).
class Authenticator {
 public:
  // INVALID_ARGUMENT naming the file, line and problem; NOT_FOUND without it.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(const std::string& path);
  // One token, held in memory only, that names `principal` (prs run: its
  // embedded master takes only the token this process made). Reload() fails.
  static std::unique_ptr<Authenticator> ForToken(absl::string_view token, Principal principal);

  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  // The principal of `token`; UNAUTHENTICATED when it is none's.
  absl::StatusOr<Principal> Authenticate(absl::string_view token) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}
  static absl::StatusOr<std::map<std::string, Principal>> Parse(const std::string& path);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::map<std::string, Principal> by_hash_ ABSL_GUARDED_BY(mu_);
};

// A listen address other than loopback needs TLS and tokens, or --insecure
// (then a loud warning): FAILED_PRECONDITION naming what is missing and how
// to make it.
absl::Status CheckExposure(const std::string& listen, bool tls, bool tokens, bool insecure);

}  // namespace prs::master

#endif  // PRS_MASTER_AUTH_H_

#include "master/auth.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/credentials.h"
#include "common/file_io.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {

constexpr struct {
  absl::string_view name;
  Role role;
} kRoles[] = {
    {"submit", Role::kSubmit},
    {"read", Role::kRead},
    {"admin", Role::kAdmin},
    {"agent", Role::kAgent},
};

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string RandomId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL reads the kernel's CSPRNG; without it no id may be made.
    std::abort();
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

Principal Principal::Local() {
  Principal p;
  p.name = "local";
  for (const auto& r : kRoles) p.roles |= static_cast<uint32_t>(r.role);
  return p;
}

absl::StatusOr<uint32_t> ParseRoles(absl::string_view text) {
  uint32_t roles = 0;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    bool known = false;
    for (const auto& r : kRoles) {
      if (r.name == name) {
        roles |= static_cast<uint32_t>(r.role);
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown role '", name, "'; the roles are submit, read, admin and agent"));
    }
  }
  if (roles == 0) return absl::InvalidArgumentError("no role; give submit, read, admin or agent");
  return roles;
}

std::string RolesText(uint32_t roles) {
  std::vector<absl::string_view> names;
  for (const auto& r : kRoles) {
    if ((roles & static_cast<uint32_t>(r.role)) != 0) names.push_back(r.name);
  }
  return absl::StrJoin(names, ",");
}

std::string HashToken(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::StrCat("sha256:", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<char*>(digest), sizeof(digest))));
}

absl::StatusOr<std::map<std::string, Principal>> Authenticator::Parse(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("--tokens: cannot read ", path));
  }
  std::map<std::string, Principal> by_hash;
  std::set<std::string> names;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tokens: ", path, " line ", number, ": ", why,
                       "; each line is 'sha256:<64 hex> <principal> <role>[,<role>...]' "
                       "(deploy/make-token.sh writes them)"));
    };
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (f.size() != 3) return bad("expected three fields");
    if (!absl::StartsWith(f[0], "sha256:") || f[0].size() != 7 + 64 || !IsHex(f[0].substr(7))) {
      return bad(
          "the first field is not sha256: and 64 hex digits (the token's hash, never the "
          "token itself)");
    }
    auto roles = ParseRoles(f[2]);
    if (!roles.ok()) return bad(roles.status().message());
    if (!names.insert(std::string(f[1])).second) {
      return bad(absl::StrCat("principal '", f[1], "' is named twice"));
    }
    Principal p{std::string(f[1]), *roles};
    if (!by_hash.emplace(absl::AsciiStrToLower(f[0]), std::move(p)).second) {
      return bad("the same token hash is given twice");
    }
  }
  return by_hash;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(const std::string& path) {
  std::unique_ptr<Authenticator> a(new Authenticator(path));
  if (auto s = a->Reload(); !s.ok()) return s;
  return a;
}

std::unique_ptr<Authenticator> Authenticator::ForToken(absl::string_view token,
                                                       Principal principal) {
  std::unique_ptr<Authenticator> a(new Authenticator(""));
  a->by_hash_.emplace(HashToken(token), std::move(principal));
  return a;
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("the tokens are not from a file");
  auto parsed = Parse(path_);
  if (!parsed.ok()) return parsed.status();
  absl::MutexLock lock(&mu_);
  by_hash_ = *std::move(parsed);
  return absl::OkStatus();
}

absl::StatusOr<Principal> Authenticator::Authenticate(absl::string_view token) const {
  if (token.empty()) {
    return absl::UnauthenticatedError(
        "this master needs a token: give --token-file FILE or set PRS_TOKEN (ask the cluster's "
        "admin for one)");
  }
  const std::string hash = HashToken(token);
  absl::MutexLock lock(&mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    return absl::UnauthenticatedError(
        "the token is not known to this master (mistyped, or revoked); check --token-file or "
        "PRS_TOKEN");
  }
  return it->second;
}

size_t Authenticator::size() const {
  absl::MutexLock lock(&mu_);
  return by_hash_.size();
}

// A listen address other than loopback needs TLS and tokens, or --insecure.
absl::Status CheckExposure(const std::string& listen, bool tls, bool tokens, bool insecure) {
  if (IsLoopbackAddress(listen)) return absl::OkStatus();
  if (tls && tokens) return absl::OkStatus();
  if (!insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen ", listen, " is reachable from other hosts, so prs-master needs ",
        !tls && !tokens ? "TLS (--tls-cert, --tls-key) and tokens (--tokens)"
        : !tls          ? "TLS (--tls-cert, --tls-key)"
                        : "tokens (--tokens)",
        " there: anyone who reaches the port could otherwise run code on every agent. "
        "deploy/make-certs.sh and deploy/make-token.sh make them (docs/security.md). Listen on "
        "127.0.0.1, or give --insecure on a network you trust completely"));
  }
  for (int i = 0; i < 3; ++i) {
    spdlog::warn(
        "INSECURE: listening on {} without {}; anyone who reaches this port can run "
        "code on every agent and read every job (--insecure)",
        listen,
        !tls && !tokens ? "TLS or tokens"
        : !tls          ? "TLS"
                        : "tokens");
  }
  return absl::OkStatus();
}

}  // namespace prs::master

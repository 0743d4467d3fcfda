#ifndef PRS_COMMON_CREDENTIALS_H_
#define PRS_COMMON_CREDENTIALS_H_

// TLS and bearer tokens for every prs channel (docs/security.md): the
// server's credentials, a client's channel credentials, and the token a
// client sends with each call.

#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls_files.h"

namespace prs {

// The metadata key of the bearer token ("authorization: Bearer <token>").
inline constexpr char kAuthorizationKey[] = "authorization";

// TLS server credentials from `tls`, or insecure ones when it names no
// certificate. INVALID_ARGUMENT naming the flag and file that cannot be read
// or that is incomplete.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFiles& tls);

// TLS channel credentials when `tls.ca` is set, else insecure ones.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls);

// The token in `token_file` (its first line, without surrounding white
// space), or `token` itself when no file is given; "" when neither is.
absl::StatusOr<std::string> ReadToken(const std::string& token_file, const std::string& token);

// Adds the bearer token to a call (nothing for an empty token). The token
// travels in the call's metadata: over TLS it is encrypted; on a plaintext
// loopback channel it never leaves the host.
void AddToken(grpc::ClientContext& ctx, const std::string& token);

// True when `address` ("host:port", "[v6]:port") names this host only: an
// IPv4 address in 127/8, ::1, or "localhost". A name that merely starts like
// one ("127.0.0.1.example.org") is not.
bool IsLoopbackAddress(const std::string& address);

// A token goes in clear text only to a loopback address: FAILED_PRECONDITION
// naming the fix when `token` would reach another host without TLS.
absl::Status CheckTokenChannel(const std::string& address, const TlsFiles& tls,
                               const std::string& token);

// The token of a server call's "authorization: Bearer <token>", or "".
std::string BearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

}  // namespace prs

#endif  // PRS_COMMON_CREDENTIALS_H_

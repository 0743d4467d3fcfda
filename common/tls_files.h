#ifndef PRS_COMMON_TLS_FILES_H_
#define PRS_COMMON_TLS_FILES_H_

#include <string>

namespace prs {

// PEM files for TLS (common/credentials.h makes gRPC credentials of them;
// this header has no gRPC, for options structs). A client with `ca` speaks
// TLS and checks the master's certificate against it; with `cert` and `key`
// it also presents its own (mutual TLS). A server with `cert` and `key`
// speaks TLS; with `ca` it also requires every client to present a
// certificate that `ca` signed.
struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

}  // namespace prs

#endif  // PRS_COMMON_TLS_FILES_H_

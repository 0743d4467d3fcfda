#ifndef PRS_MASTER_HTTP_SERVER_H_
#define PRS_MASTER_HTTP_SERVER_H_

// A small HTTP/1.1 server for the master's read-only window (`--http-listen`:
// /metrics and the dashboard, master/web.h): GET and HEAD, one request per
// connection, optionally over TLS (OpenSSL). Every byte a client sends is
// bounded: the request head (16 KiB), the connections open at once (64;
// past them a client gets 503), the time to shake hands and send the request
// (10 s in all) and to take the reply (30 s). Sockets are non-blocking and
// every wait has a deadline, so no client holds a thread past them.
// No gRPC here.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prs::master {

struct HttpRequest {
  std::string method;                                      // GET or HEAD
  std::string path;                                        // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string authorization;                               // the header's value, or ""

  // The first value of `name` in the query, or "".
  std::string Query(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // added to the defaults

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen;  // host:port, [v6]:port; port 0 picks a free one
  // PEM certificate (chain) and key: HTTPS. Both empty: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
  // With HTTPS: clients must present a certificate this CA signed.
  std::string tls_client_ca;
  int threads = 4;
  int max_connections = 64;
  size_t max_head_bytes = 16 << 10;
  // The TLS handshake and the request head, from the connection's start.
  absl::Duration io_timeout = absl::Seconds(10);
  // Sending the reply (a 1 MiB log file to a slow reader).
  absl::Duration response_timeout = absl::Seconds(30);
};

class HttpServer {
 public:
  // Binds and starts serving `handler` (called on the server's threads, one
  // request at a time per thread). UNAVAILABLE when the address cannot be
  // bound, INVALID_ARGUMENT for a bad address or TLS file.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler);
  ~HttpServer();  // Stop()
  int port() const;
  // Stops accepting, answers nothing more, joins the threads. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "%2F" → "/", "+" kept (paths) or made a space (`form`: query values).
std::string PercentDecode(const std::string& text, bool form);

}  // namespace prs::master

#endif  // PRS_MASTER_HTTP_SERVER_H_

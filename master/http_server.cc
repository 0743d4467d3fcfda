#include "master/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace prs::master {

std::string HttpRequest::Query(const std::string& name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (!r.body.empty() && r.body.back() != '\n') r.body += '\n';
  return r;
}

HttpResponse HttpResponse::Json(std::string body) {
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(const std::string& text, bool form) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else if (c == '+' && form) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

// host:port → host, port; "[::1]:80" → "::1", "80".
bool SplitHostPort(const std::string& address, std::string& host, std::string& port) {
  if (absl::StartsWith(address, "[")) {
    const size_t end = address.find("]:");
    if (end == std::string::npos) return false;
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  int n;
  return !port.empty() && absl::SimpleAtoi(port, &n) && n >= 0 && n <= 65535;
}

std::string OpenSslError() {
  char text[256] = "unknown error";
  if (const unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, text, sizeof text);
  return text;
}

// One client's socket, non-blocking: every read and write waits at most
// until a deadline, whatever the client does (a byte now and then, a TLS
// handshake that never ends, a reader that never reads).
class Connection {
 public:
  Connection(int fd, SSL_CTX* ctx) : fd_(fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (ctx != nullptr) {
      ssl_ = SSL_new(ctx);
      SSL_set_fd(ssl_, fd);
    }
  }
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ERR_clear_error();
  }

  bool Handshake(absl::Time deadline) {
    return ssl_ == nullptr || Tls([this] { return SSL_accept(ssl_); }, deadline) == 1;
  }
  // Bytes read (> 0), 0 at the end, -1 on an error or past the deadline.
  ssize_t Read(char* buffer, size_t n, absl::Time deadline) {
    if (ssl_ != nullptr) {
      return Tls([&] { return SSL_read(ssl_, buffer, static_cast<int>(n)); }, deadline);
    }
    for (;;) {
      const ssize_t got = ::recv(fd_, buffer, n, MSG_DONTWAIT);
      if (got >= 0) return got;
      if ((errno != EAGAIN && errno != EINTR) || !Wait(POLLIN, deadline)) return -1;
    }
  }
  bool WriteAll(const std::string& data, absl::Time deadline) {
    for (size_t done = 0; done < data.size();) {
      const size_t n = std::min<size_t>(data.size() - done, 1 << 20);
      ssize_t put;
      if (ssl_ != nullptr) {
        put =
            Tls([&] { return SSL_write(ssl_, data.data() + done, static_cast<int>(n)); }, deadline);
      } else {
        put = ::send(fd_, data.data() + done, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (put < 0 && (errno == EAGAIN || errno == EINTR)) {
          if (!Wait(POLLOUT, deadline)) return false;
          continue;
        }
      }
      if (put <= 0) return false;
      done += static_cast<size_t>(put);
    }
    return true;
  }
  // TLS close_notify, without waiting for the client's.
  void Close() {
    if (ssl_ != nullptr) SSL_shutdown(ssl_);
  }

  // The request was refused before it was read whole: closing now, with its
  // rest unread, would reset the connection and lose the answer. Half-close,
  // then read and drop what comes, 256 KiB and 1 s at most in all.
  void Linger() {
    ::shutdown(fd_, SHUT_WR);
    const absl::Time deadline = absl::Now() + absl::Seconds(1);
    char buffer[16384];
    for (size_t total = 0; total < (256u << 10);) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        total += static_cast<size_t>(n);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR) || !Wait(POLLIN, deadline)) {
        return;
      }
    }
  }

 private:
  bool Wait(short events, absl::Time deadline) {
    for (;;) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      // Rounded up: a wait that ends before the deadline is not a timeout.
      const int64_t ms = absl::ToInt64Milliseconds(left) + 1;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 60'000)));
      if (r > 0) return true;  // ready, or hung up: the next call says which
      if (r < 0 && errno != EINTR) return false;
    }
  }
  // An OpenSSL call, retried as the socket becomes ready, until the deadline.
  template <typename Op>
  int Tls(Op op, absl::Time deadline) {
    for (;;) {
      const int r = op();
      if (r > 0) return r;
      const int error = SSL_get_error(ssl_, r);
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      const short events = error == SSL_ERROR_WANT_READ    ? POLLIN
                           : error == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                           : 0;
      if (events == 0 || !Wait(events, deadline)) return -1;
    }
  }

  const int fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, HttpHandler handler)
      : options_(options), handler_(std::move(handler)) {}

  ~Impl() {
    Stop();
    if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
  }

  absl::Status Start() {
    if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
      if (auto s = LoadTls(); !s.ok()) return s;
    }
    std::string host, port;
    if (!SplitHostPort(options_.listen, host, port)) {
      return absl::InvalidArgumentError(absl::StrCat("--http-listen '", options_.listen,
                                                     "' is not host:port, e.g. 127.0.0.1:7601"));
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (int e = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
        e != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--http-listen '", options_.listen, "': ", gai_strerror(e)));
    }
    std::string error = "no address";
    for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
        listen_fd_ = fd;
      } else {
        error = std::strerror(errno);
        ::close(fd);
      }
    }
    ::freeaddrinfo(found);
    if (listen_fd_ < 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on --http-listen ", options_.listen,
                                                 ": ", error,
                                                 "; is another process using the port?"));
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { WorkerMain(); });
    acceptor_ = std::thread([this] { AcceptMain(); });
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
    if (acceptor_.joinable()) acceptor_.join();
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      // A connection being served ends now: its reads and writes fail.
      for (int fd : active_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (int fd : queue_) ::close(fd);
    queue_.clear();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    listen_fd_ = wake_fd_ = -1;
  }

  int port() const { return port_; }

 private:
  absl::Status LoadTls() {
    ssl_ctx_ = SSL_CTX_new(TLS_server_method());
    if (ssl_ctx_ == nullptr) return absl::InternalError("cannot make a TLS context");
    SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx_, options_.tls_cert.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-cert ", options_.tls_cert, " cannot be used for HTTPS: ", OpenSslError()));
    }
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx_, options_.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl_ctx_) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-key ", options_.tls_key, " cannot be used for HTTPS: ", OpenSslError()));
    }
    if (!options_.tls_client_ca.empty()) {  // mutual TLS, as on the gRPC port
      if (SSL_CTX_load_verify_locations(ssl_ctx_, options_.tls_client_ca.c_str(), nullptr) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--tls-ca ", options_.tls_client_ca, " cannot be used for HTTPS: ", OpenSslError()));
      }
      SSL_CTX_set_client_CA_list(ssl_ctx_, SSL_load_client_CA_file(options_.tls_client_ca.c_str()));
      SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return absl::OkStatus();
  }

  void AcceptMain() {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (!stopped_.load()) {
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) break;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        // Out of file descriptors: the connection waits in the backlog; the
        // listening socket stays readable, so pause rather than spin.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          pollfd wake{wake_fd_, POLLIN, 0};
          ::poll(&wake, 1, 100);
        }
        continue;  // or the client left already
      }
      absl::MutexLock lock(&mu_);
      if (static_cast<int>(queue_.size() + active_.size()) >= options_.max_connections) {
        // Over the bound: refuse at once (plain text; a TLS client sees a
        // failed handshake, as from any full server).
        static constexpr char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
            "Retry-After: 1\r\n\r\n";
        if (ssl_ctx_ == nullptr) (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      queue_.push_back(fd);
    }
  }

  void WorkerMain() {
    for (;;) {
      int fd;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Impl* self) { return self->closing_ || !self->queue_.empty(); }, this));
        if (closing_) return;
        fd = queue_.front();
        queue_.pop_front();
        active_.insert(fd);
      }
      Serve(fd);
      absl::MutexLock lock(&mu_);
      active_.erase(fd);  // before close: Stop() never touches a reused number
      ::close(fd);
    }
  }

  // One connection: TLS handshake and request head within io_timeout of its
  // start, the handler, the reply within response_timeout.
  void Serve(int fd) {
    Connection connection(fd, ssl_ctx_);
    const absl::Time deadline = absl::Now() + options_.io_timeout;
    if (!connection.Handshake(deadline)) return;
    std::string head;
    int status = 0;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      if (head.size() > options_.max_head_bytes) {
        status = 431;
        break;
      }
      const ssize_t n = connection.Read(buffer, sizeof buffer, deadline);
      if (n <= 0) {
        // Nothing sent, or the client went away: just close. Out of time: 408.
        status = head.empty() || absl::Now() < deadline ? -1 : 408;
        break;
      }
      head.append(buffer, static_cast<size_t>(n));
    }
    HttpResponse response;
    HttpRequest request;
    if (status == 0) status = Parse(head, request);
    if (status == 0) {
      response = handler_(request);
    } else if (status > 0) {
      response = HttpResponse::Text(status, Reason(status));
    }
    if (status >= 0) {
      std::string reply = absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                                       "\r\nContent-Type: ", response.content_type,
                                       "\r\nContent-Length: ", response.body.size(),
                                       "\r\nConnection: close\r\nCache-Control: no-store\r\n"
                                       "X-Content-Type-Options: nosniff\r\n");
      for (const auto& [k, v] : response.headers) absl::StrAppend(&reply, k, ": ", v, "\r\n");
      reply += "\r\n";
      if (request.method != "HEAD") reply += response.body;
      connection.WriteAll(reply, absl::Now() + options_.response_timeout);
    }
    connection.Close();
    if (status > 0) connection.Linger();
  }

  // The request line and the headers prs reads; 0, or the status to answer.
  static int Parse(const std::string& head, HttpRequest& request) {
    const std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(head).substr(0, head.find("\r\n\r\n")), "\r\n");
    const std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
    if (first.size() != 3 || !absl::StartsWith(first[2], "HTTP/1.") || first[1].empty() ||
        first[1][0] != '/') {
      return 400;
    }
    request.method = std::string(first[0]);
    if (request.method != "GET" && request.method != "HEAD") return 405;
    const absl::string_view target = first[1];
    const size_t q = target.find('?');
    request.path = PercentDecode(std::string(target.substr(0, q)), /*form=*/false);
    if (q != absl::string_view::npos) {
      for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
        const size_t eq = pair.find('=');
        request.query.emplace_back(PercentDecode(std::string(pair.substr(0, eq)), true),
                                   eq == absl::string_view::npos
                                       ? ""
                                       : PercentDecode(std::string(pair.substr(eq + 1)), true));
      }
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == absl::string_view::npos) continue;
      if (absl::EqualsIgnoreCase(lines[i].substr(0, colon), "authorization")) {
        request.authorization = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      }
    }
    return 0;
  }

  const HttpServerOptions options_;
  const HttpHandler handler_;
  SSL_CTX* ssl_ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  absl::Mutex mu_;
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  std::set<int> active_ ABSL_GUARDED_BY(mu_);  // connections being served
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  if (auto s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace prs::master

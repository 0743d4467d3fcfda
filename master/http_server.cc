#include "master/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
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
    return absl::OkStatus();
  }

  void AcceptMain() {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (!stopped_.load()) {
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) break;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // the client left; EMFILE: the next poll retries
      timeval tv = absl::ToTimeval(options_.io_timeout);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      absl::MutexLock lock(&mu_);
      if (static_cast<int>(queue_.size() + busy_) >= options_.max_connections) {
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
        ++busy_;
      }
      Serve(fd);
      ::close(fd);
      absl::MutexLock lock(&mu_);
      --busy_;
    }
  }

  // One connection: TLS handshake, the request head, the handler, the reply.
  void Serve(int fd) {
    SSL* ssl = nullptr;
    if (ssl_ctx_ != nullptr) {
      ssl = SSL_new(ssl_ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return;
      }
    }
    auto read = [&](char* buffer, size_t n) -> ssize_t {
      return ssl != nullptr ? SSL_read(ssl, buffer, static_cast<int>(n)) : ::recv(fd, buffer, n, 0);
    };
    auto write_all = [&](const std::string& data) {
      size_t done = 0;
      while (done < data.size()) {
        const ssize_t n =
            ssl != nullptr
                ? SSL_write(ssl, data.data() + done, static_cast<int>(data.size() - done))
                : ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return;
        done += static_cast<size_t>(n);
      }
    };
    std::string head;
    int status = 0;
    char buffer[4096];
    // The whole head within io_timeout, not each read: a client that sends a
    // byte now and then does not hold a thread for long.
    const absl::Time deadline = absl::Now() + options_.io_timeout;
    while (head.find("\r\n\r\n") == std::string::npos) {
      if (head.size() > options_.max_head_bytes) {
        status = 431;
        break;
      }
      if (absl::Now() > deadline) {
        status = 408;
        break;
      }
      const ssize_t n = read(buffer, sizeof buffer);
      if (n <= 0) {
        status = head.empty() ? -1 : 408;  // nothing sent: just close
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
      write_all(reply);
    }
    if (ssl != nullptr) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    if (status > 0) LingeringClose(fd);
  }

  // The request was refused before it was read whole: closing now, with its
  // rest unread, would reset the connection and lose the answer. Half-close,
  // then read and drop what comes (256 KiB, 1 s at most).
  static void LingeringClose(int fd) {
    ::shutdown(fd, SHUT_WR);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buffer[16384];
    for (size_t total = 0; total < (256u << 10);) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
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
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
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

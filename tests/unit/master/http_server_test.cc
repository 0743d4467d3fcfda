#include "master/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "absl/time/clock.h"

namespace prs::master {
namespace {

// Sends `request` raw to 127.0.0.1:port and returns everything the server
// answers until it closes.
std::string Exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) reply.append(buffer, n);
  ::close(fd);
  return reply;
}

std::unique_ptr<HttpServer> Echo(HttpServerOptions options = {}) {
  options.listen = "127.0.0.1:0";
  auto server = HttpServer::Start(options, [](const HttpRequest& r) {
    std::string body = r.method + " " + r.path + " auth=" + r.authorization;
    for (const auto& [k, v] : r.query) body += " [" + k + "=" + v + "]";
    return HttpResponse::Text(r.path == "/missing" ? 404 : 200, body);
  });
  REQUIRE(server.ok());
  return *std::move(server);
}

TEST_CASE("GET: the decoded path, query and Authorization reach the handler") {
  auto server = Echo();
  const std::string reply =
      Exchange(server->port(),
               "GET /api/jobs/a%20b?path=user%2Ferror.txt&x=1+2&flag HTTP/1.1\r\nHost: h\r\n"
               "authorization: Bearer t0k\r\n\r\n");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.find("Content-Length: ") != std::string::npos);
  CHECK(reply.find("Connection: close\r\n") != std::string::npos);
  CHECK(reply.find("\r\n\r\nGET /api/jobs/a b auth=Bearer t0k [path=user/error.txt] [x=1 2] "
                   "[flag=]\n") != std::string::npos);
  CHECK(Exchange(server->port(), "GET /missing HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
}

TEST_CASE("HEAD has the headers without the body") {
  auto server = Echo();
  const std::string reply = Exchange(server->port(), "HEAD /x HTTP/1.1\r\n\r\n");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.size() == reply.find("\r\n\r\n") + 4);
}

TEST_CASE("what is not a GET, a request line or a bounded head is refused") {
  auto server = Echo();
  CHECK(Exchange(server->port(), "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(Exchange(server->port(), "nonsense\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(Exchange(server->port(), "GET x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  const std::string huge = "GET /x HTTP/1.1\r\nX: " + std::string(100 << 10, 'a') + "\r\n\r\n";
  CHECK(Exchange(server->port(), huge).rfind("HTTP/1.1 431 ", 0) == 0);
  // A client that never finishes its head is cut off after io_timeout.
  HttpServerOptions slow;
  slow.io_timeout = absl::Milliseconds(200);
  auto short_timeout = Echo(slow);
  CHECK(Exchange(short_timeout->port(), "GET /x HTTP/1.1\r\n").rfind("HTTP/1.1 408 ", 0) == 0);
  // The server serves on.
  CHECK(Exchange(server->port(), "GET /x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200 ", 0) == 0);
}

// A client that sends one byte every 50 ms and never ends its head.
class Trickler {
 public:
  explicit Trickler(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    thread_ = std::thread([this] {
      // "POST ..." is refused at once (405); the bytes after it keep coming.
      const std::string text = "POST /x HTTP/1.1\r\n\r\n" + std::string(1000, 'a');
      for (char c : text) {
        if (stop_.load() || ::send(fd_, &c, 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~Trickler() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
  }

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_CASE("clients that trickle bytes hold no thread past the deadlines, nor the shutdown") {
  HttpServerOptions options;
  options.threads = 1;
  options.io_timeout = absl::Milliseconds(300);
  auto server = Echo(options);
  {
    Trickler slow_head(server->port());  // its head never ends: cut at io_timeout
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const absl::Time start = absl::Now();
    CHECK(Exchange(server->port(), "GET /x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(absl::Now() - start < absl::Seconds(3));
  }
  {
    // Refused (405), then drained for 1 s at most however slowly it sends.
    Trickler after_refusal(server->port());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const absl::Time start = absl::Now();
    CHECK(Exchange(server->port(), "GET /x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(absl::Now() - start < absl::Seconds(3));
  }
  HttpServerOptions patient;
  patient.threads = 1;
  patient.io_timeout = absl::Seconds(60);
  auto server2 = Echo(patient);
  Trickler held(server2->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const absl::Time start = absl::Now();
  server2->Stop();  // ends the connection it serves instead of waiting 60 s
  CHECK(absl::Now() - start < absl::Seconds(3));
}

TEST_CASE("a bad address or a port in use is a clear error") {
  HttpServerOptions bad;
  bad.listen = "no-port";
  auto s = HttpServer::Start(bad, [](const HttpRequest&) { return HttpResponse{}; });
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.status().message()).find("is not host:port") != std::string::npos);
  auto first = Echo();
  HttpServerOptions same;
  same.listen = "127.0.0.1:" + std::to_string(first->port());
  auto second = HttpServer::Start(same, [](const HttpRequest&) { return HttpResponse{}; });
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("percent-decoding keeps what is not an escape") {
  CHECK(PercentDecode("a%2Fb%zz%4", false) == "a/b%zz%4");
  CHECK(PercentDecode("a+b", false) == "a+b");
  CHECK(PercentDecode("a+b", true) == "a b");
}

}  // namespace
}  // namespace prs::master

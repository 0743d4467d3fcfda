// prs-master: holds the job queue, leases and progress; serves JobService and
// AgentService over gRPC.

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/grpc_logging.h"
#include "common/logging.h"
#include "common/signals.h"
#include "master/master_server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"prs-master: the prs job queue and progress server"};
  prs::master::MasterOptions options;
  std::string port_file;
  std::string log_level = "info";
  double heartbeat_s = 2, agent_timeout_s = 10, logs_grace_s = 30;
  options.manager.state_dir = "./prs-state";
  app.add_option("--listen", options.listen,
                 "host:port to serve on (port 0 picks one); any address but loopback needs TLS "
                 "and --tokens, or --insecure")
      ->capture_default_str();
  app.add_option("--tls-cert", options.tls.cert, "serve TLS with this certificate (PEM)");
  app.add_option("--tls-key", options.tls.key, "the certificate's private key (PEM)");
  app.add_option("--tls-ca", options.tls.ca,
                 "also require client certificates signed by this CA (mutual TLS)");
  app.add_option("--tokens", options.tokens_file,
                 "principals' hashed tokens and roles (docs/security.md); reloaded on SIGHUP");
  app.add_flag("--insecure", options.insecure,
               "allow a non-loopback --listen without TLS or tokens (anyone who reaches the port "
               "runs code on every agent)");
  app.add_option("--state-dir", options.manager.state_dir, "folder for the database and job logs")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the chosen port to this file once serving");
  std::string http_port_file;
  app.add_option("--http-listen", options.http_listen,
                 "host:port for /metrics (Prometheus) and the dashboard (HTTPS with --tls-cert; "
                 "as --listen, any address but loopback needs TLS and --tokens)");
  app.add_option("--http-port-file", http_port_file,
                 "write the HTTP port to this file once serving");
  app.add_option("--heartbeat-interval", heartbeat_s, "seconds between agent heartbeats")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--logs-grace", logs_grace_s,
                 "seconds a job's end waits at most for its agents' last log lines")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--agent-timeout", agent_timeout_s, "seconds of silence before an agent is lost")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string durability = "process";
  app.add_option("--durability", durability,
                 "what a commit survives: process (any crash of prs-master) or machine (a crash "
                 "of the machine too; fdatasync before each commit)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto parsed = prs::master::ParseDurability(durability);
  if (!parsed.ok()) {
    std::fprintf(stderr, "prs-master: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  options.manager.durability = *parsed;

  prs::SetUpLogging("master", log_level);
  prs::RouteGrpcLogsToSpdlog(spdlog::level::warn);
  options.manager.heartbeat_interval = absl::Seconds(heartbeat_s);
  options.manager.agent_timeout = absl::Seconds(agent_timeout_s);
  options.manager.logs_grace = absl::Seconds(logs_grace_s);

  prs::BlockTerminationSignals();  // before any thread starts
  prs::BlockHangupSignal();

  auto server = prs::master::MasterServer::Create(options);
  if (!server.ok()) {
    std::fprintf(stderr, "prs-master: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  spdlog::info("serving listen={} port={} state_dir={} tls={} client_certificates={} tokens={}",
               options.listen, (*server)->port(), options.manager.state_dir,
               options.tls.cert.empty() ? "off" : "on", options.tls.ca.empty() ? "off" : "required",
               options.tokens_file.empty() ? "off (every caller is local)" : options.tokens_file);
  if (!options.http_listen.empty()) {
    const std::string host = options.http_listen.substr(0, options.http_listen.rfind(':'));
    spdlog::info("http listen={} port={}: {}://{}:{}/ (dashboard) and /metrics",
                 options.http_listen, (*server)->http_port(),
                 options.tls.cert.empty() ? "http" : "https",
                 host.empty() || host == "0.0.0.0" || host == "[::]" ? "<this host>" : host,
                 (*server)->http_port());
  }
  // The HTTP port first: a port file written says that everything serves.
  for (const auto& [file, port] : {std::pair{http_port_file, (*server)->http_port()},
                                   std::pair{port_file, (*server)->port()}}) {
    if (file.empty()) continue;
    const std::string tmp = file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), file.c_str());
  }
  std::atomic<bool> served{false};
  std::thread waiter([&] {
    for (;;) {
      const int sig = prs::WaitForTerminationOrHangup();
      if (served.load()) return;  // woken below: the server has stopped
      if (sig == SIGHUP) {
        // A bad file leaves the tokens as they were: never lock everyone out.
        if (auto s = (*server)->ReloadTokens(); !s.ok()) {
          spdlog::error("SIGHUP: tokens not reloaded: {}", std::string(s.message()));
        }
        continue;
      }
      spdlog::info("signal={} shutting down", sig);
      (*server)->Shutdown();
      return;
    }
  });
  (*server)->Wait();
  // The waiter may still be inside Shutdown(), which made Wait() return: the
  // server lives until it is out. Woken if no signal came.
  served.store(true);
  ::pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

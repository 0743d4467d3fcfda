// prs-agent: runs a node's workers for the master.

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "agent/agent.h"
#include "common/credentials.h"
#include "common/grpc_logging.h"
#include "common/logging.h"
#include "common/signals.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"prs-agent: runs mini-batches on this node for prs-master"};
  prs::agent::AgentOptions options;
  std::string log_level = "info";
  const char* env_master = std::getenv("PRS_MASTER");
  options.master_address = env_master && *env_master ? env_master : "127.0.0.1:7600";
  options.work_dir = "./prs-agent";
  app.add_option("--master", options.master_address, "host:port of prs-master ($PRS_MASTER)")
      ->capture_default_str();
  app.add_option("--work-dir", options.work_dir, "folder for job code, worker logs, scratch")
      ->capture_default_str();
  app.add_option("--node-id", options.node_id, "name of this node in logs (default: host name)");
  app.add_option("--python", options.python,
                 "worker interpreter when the job sets none (default /usr/bin/python3)");
  std::string gpus;
  app.add_option("--gpus", gpus,
                 "GPUs the workers may use: a count (4) or devices (0,2; one as 2,); each worker "
                 "gets the job's gpus_per_process of them in CUDA_VISIBLE_DEVICES (default: the "
                 "agent's CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi -L lists)");
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  options.tls = {env("PRS_TLS_CA"), env("PRS_TLS_CERT"), env("PRS_TLS_KEY")};
  std::string token_file = env("PRS_TOKEN_FILE");
  app.add_option("--tls-ca", options.tls.ca,
                 "CA that signed the master's certificate; turns TLS on ($PRS_TLS_CA)");
  app.add_option("--tls-cert", options.tls.cert,
                 "client certificate, when the master requires one ($PRS_TLS_CERT)");
  app.add_option("--tls-key", options.tls.key, "its private key ($PRS_TLS_KEY)");
  app.add_option("--token-file", token_file,
                 "file holding this agent's token, role agent ($PRS_TOKEN_FILE)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  prs::SetUpLogging("agent", log_level);
  prs::RouteGrpcLogsToSpdlog(spdlog::level::warn);
  auto token = prs::ReadToken(token_file, "");
  if (!token.ok()) {
    std::fprintf(stderr, "prs-agent: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  options.token = *token;
  if (!gpus.empty()) {
    auto parsed = prs::agent::ParseGpusOption(gpus);
    if (!parsed.ok()) {
      std::fprintf(stderr, "prs-agent: %s\n", std::string(parsed.status().message()).c_str());
      return 2;
    }
    options.gpus = *std::move(parsed);
  }

  prs::BlockTerminationSignals();  // before any thread starts

  auto agent = prs::agent::Agent::Create(options);
  if (!agent.ok()) {
    std::fprintf(stderr, "prs-agent: %s\n", std::string(agent.status().message()).c_str());
    return 1;
  }
  std::atomic<bool> ran{false};
  std::thread waiter([&] {
    const int sig = prs::WaitForTerminationSignal();
    if (ran.load()) return;  // woken below: the agent has stopped
    spdlog::info("signal={} stopping", sig);
    (*agent)->Stop();
  });
  (*agent)->Run();
  // The waiter may still be inside Stop(), which made Run() return: the agent
  // lives until it is out. Woken if no signal came (it is blocked for all
  // threads, so this one is left pending for the waiter alone).
  ran.store(true);
  ::pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

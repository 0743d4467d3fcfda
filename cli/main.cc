// prs: run a job locally, or submit and follow jobs on a prs-master. main()
// builds the command line and dispatches to one function per subcommand
// (cli/commands.h).

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "cli/commands.h"
#include "common/credentials.h"
#include "common/grpc_logging.h"
#include "common/logging.h"

namespace {

namespace fs = std::filesystem;
using prs::cli::JobClient;

// Everything the command line sets.
struct Args {
  std::string master;
  prs::TlsFiles tls;
  std::string token_file;
  std::string log_level = "warn";
  std::string job_file, job_id, state_dir, output = "text";
  std::vector<std::string> overrides;
  bool wait = false;
  std::string log_path;
  bool follow = false, errors = false;
  std::string clean_dir;
  std::string durability = "process";
  bool dry_run = false;
  double interval = 2;
  int iterations = 0;
};

struct Subcommands {
  CLI::App *run, *submit, *prepare, *status, *watch, *list, *cancel, *nodes, *top, *logs, *resume,
      *clean;
};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string DefaultMaster() {
  const std::string env = Env("PRS_MASTER");
  return env.empty() ? "127.0.0.1:7600" : env;
}

// TLS and the token (docs/security.md); the flags override the environment.
void AddConnectionOptions(CLI::App& app, Args& a) {
  a.tls = {Env("PRS_TLS_CA"), Env("PRS_TLS_CERT"), Env("PRS_TLS_KEY")};
  a.token_file = Env("PRS_TOKEN_FILE");
  app.add_option("--tls-ca", a.tls.ca,
                 "CA that signed the master's certificate; turns TLS on ($PRS_TLS_CA)");
  app.add_option("--tls-cert", a.tls.cert,
                 "client certificate, when the master requires one ($PRS_TLS_CERT)");
  app.add_option("--tls-key", a.tls.key, "its private key ($PRS_TLS_KEY)");
  app.add_option("--token-file", a.token_file,
                 "file holding your token ($PRS_TOKEN_FILE; or the token in $PRS_TOKEN)");
}

void AddRunSubcommand(CLI::App& app, Args& a, Subcommands& c) {
  c.run = app.add_subcommand("run", "run a job on this machine (embedded master and agent)");
  c.run->add_option("job_file", a.job_file, "the job's YAML file")->required();
  c.run->add_option("--set", a.overrides, "override a key of the job file: key=value")->take_all();
  c.run->add_option("--state-dir", a.state_dir,
                    "folder for state and logs (default: a new folder under /tmp/prs/runs)");
  c.run->add_option("--durability", a.durability,
                    "process (default: safe against any crash of prs) or machine (also against a "
                    "crash of the machine, e.g. a power loss)");
}

// resume (on a master, or of a local run) and clean-outputs.
void AddResumeAndCleanSubcommands(CLI::App& app, Args& a, Subcommands& c) {
  c.resume = app.add_subcommand(
      "resume", "run a FAILED or CANCELLED job's failed and unprocessed mini-batches again");
  c.resume->add_option("job", a.job_id, "job id")->required();
  c.resume->add_flag("--wait", a.wait, "follow the job until it ends; exit 0 only if it succeeded");
  c.resume->add_option("--state-dir", a.state_dir,
                       "continue a job of `prs run` here, from the state folder it printed "
                       "(embedded master and agent; follows the job)");

  c.clean = app.add_subcommand(
      "clean-outputs", "remove the earlier outputs that jobs moved aside in an output folder");
  c.clean->add_option("folder", a.clean_dir, "the output folder")->required();
  c.clean->add_flag("--dry-run", a.dry_run, "only list what would be removed");
}

void AddJobSubcommands(CLI::App& app, Args& a, Subcommands& c) {
  const auto output = [&a](CLI::App* sub) {
    sub->add_option("--output", a.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  };
  c.submit = app.add_subcommand("submit", "submit a job to prs-master; prints its id");
  c.submit->add_option("job_file", a.job_file, "the job's YAML file, or - for stdin")->required();
  c.submit->add_option("--set", a.overrides, "override a key of the job file: key=value")
      ->take_all();
  c.submit->add_flag("--wait", a.wait, "follow the job until it ends; exit 0 only if it succeeded");

  c.prepare = app.add_subcommand(
      "prepare",
      "check a job file and pack its source folder as submit does, without submitting; writes "
      "the SubmitJobRequest (binary protobuf) to stdout, for other clients");
  c.prepare->add_option("job_file", a.job_file, "the job's YAML file, or - for stdin")->required();
  c.prepare->add_option("--set", a.overrides, "override a key of the job file: key=value")
      ->take_all();

  c.status = app.add_subcommand("status", "show a job's state and counts");
  c.status->add_option("job", a.job_id, "job id")->required();
  output(c.status);

  c.watch = app.add_subcommand("watch", "show progress until the job ends; exit 0 only on success");
  c.watch->add_option("job", a.job_id, "job id")->required();

  c.list = app.add_subcommand("list", "list jobs, newest first");
  output(c.list);

  c.cancel = app.add_subcommand("cancel", "cancel a queued or running job");
  c.cancel->add_option("job", a.job_id, "job id")->required();

  c.nodes = app.add_subcommand("nodes", "list the agents the master knows");
  output(c.nodes);

  c.top =
      app.add_subcommand("top", "jobs and nodes, live: progress, rate, ETA, GPUs, busy workers");
  c.top->add_option("--interval", a.interval, "seconds between refreshes")->capture_default_str();
  c.top->add_option("--iterations,-n", a.iterations, "refreshes, then exit (0: until Ctrl-C)")
      ->capture_default_str();

  c.logs = app.add_subcommand(
      "logs", "list a job's log tree, print one file (--follow to keep reading), or --errors");
  c.logs->add_option("job", a.job_id, "job id")->required();
  c.logs->add_option("path", a.log_path, "a file of the tree, relative to its logs/ folder");
  c.logs->add_flag("--follow,-f", a.follow, "keep printing what is appended until the job ends");
  c.logs->add_flag("--errors", a.errors, "print user/error.txt and the first traceback");
}

int Dispatch(const Subcommands& c, const Args& a) {
  using namespace prs::cli;  // the *Command functions
  if (*c.run) return RunLocalCommand(a.job_file, a.overrides, a.durability, a.state_dir);
  if (*c.resume && !a.state_dir.empty()) return ResumeLocalCommand(a.job_id, a.state_dir);
  if (*c.clean) return CleanOutputsCommand(a.clean_dir, a.dry_run);
  if (*c.prepare) return PrepareCommand(a.job_file, a.overrides);

  auto token = prs::ReadToken(a.token_file, Env("PRS_TOKEN"));
  if (!token.ok()) return Fail(token.status());
  JobClient client(a.master, prs::cli::Connection{a.tls, *token});
  if (*c.submit) return SubmitCommand(client, a.master, a.job_file, a.overrides, a.wait);
  if (*c.status) return StatusCommand(client, a.job_id, a.output);
  if (*c.watch) return WatchCommand(client, a.job_id);
  if (*c.list) return ListCommand(client, a.output);
  if (*c.cancel) return CancelCommand(client, a.job_id);
  if (*c.logs) return LogsCommand(client, a.job_id, a.log_path, a.follow, a.errors);
  if (*c.nodes) return NodesCommand(client, a.output);
  if (*c.top) return TopCommand(client, a.master, a.interval, a.iterations);
  if (*c.resume) return ResumeCommand(client, a.job_id, a.wait);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc > 0 && std::strchr(argv[0], '/') != nullptr) {
    std::error_code ec;
    prs::cli::PrsCommand() = fs::absolute(argv[0], ec).lexically_normal().string();
  }
  CLI::App app{"prs: parallel batch inference, ParallelRunStep-compatible"};
  app.require_subcommand(1);
  app.fallthrough();  // --master may come after the subcommand too
  Args args;
  args.master = DefaultMaster();
  app.add_option("--master", args.master,
                 "host:port of prs-master (default $PRS_MASTER, then 127.0.0.1:7600)");
  app.add_option("--log-level", args.log_level, "log level of the embedded daemons (prs run)");
  AddConnectionOptions(app, args);
  Subcommands subcommands;
  // In the order `prs --help` has always listed them.
  AddRunSubcommand(app, args, subcommands);
  AddJobSubcommands(app, args, subcommands);
  AddResumeAndCleanSubcommands(app, args, subcommands);
  CLI11_PARSE(app, argc, argv);
  prs::SetUpLogging("prs", args.log_level);
  prs::RouteGrpcLogsToSpdlog(spdlog::level::debug);  // the CLI explains failures itself
  return Dispatch(subcommands, args);
}

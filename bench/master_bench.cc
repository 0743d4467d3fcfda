// prs_master_bench: what the master costs per mini-batch, with no Python.
//
// Starts the real prs-master (a child process, on 127.0.0.1:0, with a fresh
// state folder), makes --files empty input files, submits a job over gRPC
// and runs --agents simulated agents, each a thread with a channel of its
// own: it registers, heartbeats the leases it holds, pulls up to --pull
// mini-batches at a time and reports each at once as done, with one row per
// item (the file's name). The master does everything it does for real
// agents: leases, fencing, the store's transactions, the output appends, the
// log tree. When the job ends, the output file must hold each input exactly
// once.
//
// With --list-repeat N the job's input is a list file naming every file N
// times (N x --files inputs; each name must then be in the output N times):
// the master's memory at ten million inputs without ten million files.
//
// Printed (medians over --repeat runs, each on a new master and state
// folder): wall time from submit to the end, mini-batches per second, the
// master's CPU time (user + system, from /proc) per mini-batch, the time
// from submit to the first mini-batch an agent got, and the master's peak
// RSS (VmHWM). Listing the inputs is part of it. docs/benchmarks.md has the
// figures.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_defaults.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "prs/v1/job_service.grpc.pb.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string master_bin;
  std::string tmp;
  int files = 20000;
  int mini_batch_size = 1;
  int agents = 4;
  int pull = 16;
  std::string durability = "process";
  int repeat = 1;
  int list_repeat = 0;
  bool keep = false;
};

// One run's figures.
struct Run {
  int64_t batches = 0;
  double wall_s = 0;
  double cpu_s = 0;
  double first_s = 0;  // submit to the first mini-batch pulled
  double peak_mb = 0;  // the master's VmHWM
};

// The running master, stopped if the bench dies.
pid_t g_master_pid = -1;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "prs_master_bench: %s\n", message.c_str());
  if (g_master_pid > 0) ::kill(g_master_pid, SIGTERM);
  std::exit(1);
}

// User + system CPU seconds of process `pid`, from /proc/PID/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  // Fields 3.. after the name: utime is the 14th field, stime the 15th.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Peak resident memory of process `pid` in MB (VmHWM of /proc/PID/status).
double PeakRssMb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// The master, a child process serving on a port it chose.
struct Master {
  pid_t pid = -1;
  std::string address;

  void Start(const Options& o, const std::string& state_dir) {
    const std::string port_file = state_dir + ".port";
    // A --tmp kept from an earlier bench: a new state, and no stale port.
    fs::remove_all(state_dir);
    fs::remove(port_file);
    pid = ::fork();
    if (pid < 0) Die("fork failed");
    if (pid == 0) {
      const std::string log = state_dir + ".log";
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(o.master_bin.c_str(), o.master_bin.c_str(), "--listen", "127.0.0.1:0", "--port-file",
              port_file.c_str(), "--state-dir", state_dir.c_str(), "--durability",
              o.durability.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    g_master_pid = pid;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        address = absl::StrCat("127.0.0.1:", port);
        return;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid)
        Die("prs-master exited; see " + state_dir + ".log");
      absl::SleepFor(absl::Milliseconds(20));
    }
    Die("prs-master wrote no port file within 30 s");
  }

  void Stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    g_master_pid = -1;
  }
};

std::shared_ptr<grpc::Channel> Channel(const std::string& address, int n) {
  grpc::ChannelArguments args = prs::DefaultChannelArguments();
  // A connection of its own for each simulated agent, as real ones have.
  args.SetInt("prs.bench.channel", n);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One simulated agent: pulls, reports each mini-batch done, until the job
// ends. Its heartbeat thread lists the leases it holds.
class SimAgent {
 public:
  SimAgent(const std::string& address, int n, const Options& o, const std::atomic<bool>* done)
      : stub_(prs::v1::AgentService::NewStub(Channel(address, n))),
        node_(absl::StrCat("bench-", n)),
        pull_(o.pull),
        done_(done) {}

  // When this agent first got a mini-batch; InfiniteFuture() before.
  absl::Time first_task() const { return absl::FromUnixNanos(first_task_ns_.load()); }

  void Run() {
    Register();
    std::thread heartbeat([this] { HeartbeatLoop(); });
    while (!done_->load()) {
      prs::v1::PullTasksRequest req;
      req.set_agent_id(agent_id_);
      req.set_max_tasks(pull_);
      req.set_wait_ms(200);
      prs::v1::PullTasksResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(prs::RpcDeadline(absl::Seconds(30)));
      if (!stub_->PullTasks(&ctx, req, &resp).ok()) Die("PullTasks failed");
      if (resp.tasks_size() == 0) continue;
      if (first_task_ns_.load() == kNever) first_task_ns_ = absl::ToUnixNanos(absl::Now());
      Report(resp);
    }
    stop_ = true;
    heartbeat.join();
  }

  int64_t reported() const { return reported_; }

 private:
  void Register() {
    prs::v1::RegisterAgentRequest req;
    req.set_node_id(node_);
    req.set_hostname("bench");
    req.set_ip("127.0.0.1");
    req.set_pid(::getpid());
    req.set_ships_logs(false);
    prs::v1::RegisterAgentResponse resp;
    grpc::ClientContext ctx;
    if (!stub_->RegisterAgent(&ctx, req, &resp).ok()) Die("RegisterAgent failed");
    agent_id_ = resp.agent_id();
    heartbeat_ = absl::Milliseconds(std::max(100, resp.heartbeat_interval_ms()));
  }

  void Report(const prs::v1::PullTasksResponse& pulled) {
    prs::v1::ReportResultsRequest req;
    req.set_agent_id(agent_id_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& t : pulled.tasks()) held_.insert(t.lease_id());
    }
    for (const auto& t : pulled.tasks()) {
      prs::v1::TaskResult* r = req.add_results();
      r->set_job_id(t.job_id());
      r->set_task_id(t.task_id());
      r->set_lease_id(t.lease_id());
      r->set_status(prs::v1::RUN_DONE);
      r->set_items_total(t.items_size());
      r->set_items_succeeded(t.items_size());
      std::string rows;
      for (const auto& item : t.items()) {
        absl::StrAppend(&rows, fs::path(item).filename().string(), "\n");
      }
      r->set_rows(std::move(rows));
      r->set_row_count(t.items_size());
      r->set_process_name("process000");
      r->set_pid(::getpid());
      r->set_start_time_ms(absl::ToUnixMillis(absl::Now()));
    }
    prs::v1::ReportResultsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(prs::RpcDeadline(absl::Seconds(60)));
    if (!stub_->ReportResults(&ctx, req, &resp).ok()) Die("ReportResults failed");
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& t : pulled.tasks()) held_.erase(t.lease_id());
    reported_ += pulled.tasks_size();
  }

  void HeartbeatLoop() {
    while (!stop_) {
      prs::v1::HeartbeatRequest req;
      req.set_agent_id(agent_id_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& id : held_) req.add_held_lease_ids(id);
      }
      prs::v1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(prs::RpcDeadline(absl::Seconds(10)));
      stub_->Heartbeat(&ctx, req, &resp);  // a miss is retried at the next beat
      const absl::Time next = absl::Now() + heartbeat_;
      while (!stop_ && absl::Now() < next) absl::SleepFor(absl::Milliseconds(20));
    }
  }

  std::unique_ptr<prs::v1::AgentService::Stub> stub_;
  const std::string node_;
  const int pull_;
  const std::atomic<bool>* const done_;
  std::string agent_id_;
  absl::Duration heartbeat_ = absl::Seconds(1);
  std::atomic<bool> stop_{false};
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> first_task_ns_{kNever};
  std::mutex mu_;
  std::set<std::string> held_;
  int64_t reported_ = 0;
};

// Empty files data/f0000000.txt ...; those there already (a --tmp kept with
// --keep) are kept.
void MakeInputs(const std::string& dir, int n) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/f%07d.txt", i);
    struct stat st {};
    if (::stat((dir + name).c_str(), &st) == 0) continue;
    const int fd = ::open((dir + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) Die("cannot create the inputs in " + dir);
    ::close(fd);
  }
}

prs::v1::SubmitJobRequest JobRequest(const Options& o, const std::string& root,
                                     const std::string& out) {
  prs::v1::SubmitJobRequest req;
  prs::v1::JobSpec& s = *req.mutable_spec();
  s.set_name("master-bench");
  s.set_entry_script("score.py");
  s.set_source_directory(root + "/src");
  prs::v1::Input* in = s.add_inputs();
  in->set_name("files");
  in->set_type("file");
  if (o.list_repeat > 0) {
    in->set_list_file(root + "/inputs.txt");
  } else {
    in->set_path(root + "/data");
  }
  s.set_output(out);
  s.set_output_action("append_row");
  s.set_append_row_file_name("rows.txt");
  s.set_mini_batch_size(o.mini_batch_size);
  s.set_mini_batch_size_text(std::to_string(o.mini_batch_size));
  s.set_error_threshold(0);
  s.set_allowed_failed_count(-1);
  s.set_allowed_failed_percent(100);
  s.set_node_count(o.agents);
  s.set_process_count_per_node(1);
  s.set_run_invocation_timeout(60);
  s.set_run_max_try(3);
  s.set_logging_level("WARNING");
  prs::v1::SnapshotFile* f = req.mutable_snapshot()->add_files();
  f->set_path("score.py");
  f->set_content("def run(mini_batch):\n    return mini_batch\n");
  f->set_mode(0644);
  return req;
}

// Each input's name `times` times (once per listing of it), and nothing else.
void CheckOutput(const std::string& path, int files, int times) {
  std::ifstream in(path);
  std::unordered_map<std::string, int> seen;
  for (std::string line; std::getline(in, line);) ++seen[line];
  int found = 0;
  for (int i = 0; i < files; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%07d.txt", i);
    auto it = seen.find(name);
    if (it == seen.end() || it->second != times) {
      Die(absl::StrCat("output ", path, ": ", name, " appears ", it == seen.end() ? 0 : it->second,
                       " times, not ", times));
    }
    ++found;
  }
  if (static_cast<int>(seen.size()) != found) Die("output " + path + " has rows that are no input");
}

// Starts a master on a new state folder, submits the job, runs the agents
// until it ends, and checks the output.
Run RunOnce(const Options& o, const std::string& root, int r) {
  Master master;
  master.Start(o, absl::StrCat(root, "/state-", r));
  auto jobs = prs::v1::JobService::NewStub(Channel(master.address, -1));

  std::atomic<bool> done{false};
  std::vector<std::unique_ptr<SimAgent>> agents;
  for (int i = 0; i < o.agents; ++i) {
    agents.push_back(std::make_unique<SimAgent>(master.address, i, o, &done));
  }
  std::vector<std::thread> threads;
  for (auto& a : agents) threads.emplace_back([&a] { a->Run(); });

  const double cpu_before = CpuSeconds(master.pid);
  const absl::Time start = absl::Now();
  prs::v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext ctx;
    grpc::Status s =
        jobs->SubmitJob(&ctx, JobRequest(o, root, absl::StrCat(root, "/out-", r)), &submitted);
    if (!s.ok()) Die("SubmitJob: " + s.error_message());
  }
  prs::v1::JobStatus status;
  for (;;) {
    grpc::ClientContext ctx;
    prs::v1::GetJobRequest req;
    req.set_job_id(submitted.job_id());
    if (!jobs->GetJob(&ctx, req, &status).ok()) Die("GetJob failed");
    if (status.state() != prs::v1::QUEUED && status.state() != prs::v1::RUNNING) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  Run run;
  run.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  run.cpu_s = CpuSeconds(master.pid) - cpu_before;
  run.peak_mb = PeakRssMb(master.pid);
  absl::Time first = absl::InfiniteFuture();
  for (const auto& a : agents) first = std::min(first, a->first_task());
  run.first_s = absl::ToDoubleSeconds(first - start);
  done = true;
  for (auto& t : threads) t.join();
  master.Stop();
  if (status.state() != prs::v1::SUCCEEDED) {
    Die(absl::StrCat("job ended ", prs::v1::JobState_Name(status.state()), ": ", status.reason()));
  }
  CheckOutput(status.output_file(), o.files, std::max(1, o.list_repeat));
  run.batches = status.counts().mini_batches_created();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"The master's cost per mini-batch, driven over gRPC by simulated agents"};
  app.add_option("--master-bin", o.master_bin, "prs-master (default: beside this binary)");
  app.add_option("--tmp", o.tmp, "scratch folder (default: a new one under $TMPDIR or /tmp)");
  app.add_option("--files", o.files, "input files")->capture_default_str();
  app.add_option("--mini-batch-size", o.mini_batch_size, "files per mini-batch")
      ->capture_default_str();
  app.add_option("--agents", o.agents, "simulated agents")->capture_default_str();
  app.add_option("--pull", o.pull, "mini-batches per PullTasks at most")->capture_default_str();
  app.add_option("--durability", o.durability, "process or machine")->capture_default_str();
  app.add_option("--repeat", o.repeat, "runs; medians are printed")->capture_default_str();
  app.add_option("--list-repeat", o.list_repeat,
                 "input: a list file naming each file this many times (0: the folder)")
      ->capture_default_str();
  app.add_flag("--keep", o.keep, "keep the scratch folder");
  CLI11_PARSE(app, argc, argv);
  if (o.master_bin.empty()) {
    o.master_bin = (fs::canonical("/proc/self/exe").parent_path() / "prs-master").string();
  }
  if (o.tmp.empty()) {
    const char* t = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(t && *t ? t : "/tmp", "/prs-master-bench-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) Die("mkdtemp failed");
    o.tmp = pattern;
  }
  const std::string root = o.tmp;
  const absl::Time made_start = absl::Now();
  MakeInputs(root + "/data", o.files);
  if (o.list_repeat > 0) {
    std::ofstream list(root + "/inputs.txt");
    for (int k = 0; k < o.list_repeat; ++k) {
      for (int i = 0; i < o.files; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "data/f%07d.txt\n", i);
        list << name;
      }
    }
  }
  fs::create_directories(root + "/src");
  std::ofstream(root + "/src/score.py") << "def run(mini_batch):\n    return mini_batch\n";
  std::fprintf(stderr, "made %d inputs in %.1f s\n", o.files,
               absl::ToDoubleSeconds(absl::Now() - made_start));

  std::vector<Run> runs;
  for (int r = 0; r < o.repeat; ++r) {
    runs.push_back(RunOnce(o, root, r));
    const Run& run = runs.back();
    std::fprintf(
        stderr,
        "run %d: %.3f s, master CPU %.3f s, first mini-batch after %.3f s, peak RSS %.0f MB\n",
        r + 1, run.wall_s, run.cpu_s, run.first_s, run.peak_mb);
  }
  // Medians over the runs.
  auto median = [&runs](double Run::*field) {
    std::vector<double> v;
    for (const Run& run : runs) v.push_back(run.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double wall = median(&Run::wall_s);
  const double cpu = median(&Run::cpu_s);
  const int64_t batches = runs.front().batches;
  std::printf(
      "files=%d mini_batch_size=%d agents=%d pull=%d durability=%s repeat=%d: %lld mini-batches "
      "in %.2f s = %.0f mini-batches/s; master CPU %.2f s = %.1f us per mini-batch; first "
      "mini-batch pulled after %.3f s; master peak RSS %.0f MB (medians); output checked each "
      "run: each input %s\n",
      o.files, o.mini_batch_size, o.agents, o.pull, o.durability.c_str(), o.repeat,
      static_cast<long long>(batches), wall, static_cast<double>(batches) / wall, cpu,
      cpu * 1e6 / static_cast<double>(batches), median(&Run::first_s), median(&Run::peak_mb),
      o.list_repeat > 1 ? absl::StrCat(o.list_repeat, " times (list file)").c_str() : "once");
  if (!o.keep) fs::remove_all(root);
  return 0;
}

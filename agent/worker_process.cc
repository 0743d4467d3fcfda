#include "agent/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace prs::agent {
namespace {

// The fd number the worker finds its socket at.
constexpr int kWorkerFd = 3;

int64_t ToInt(const std::string& s) {
  int64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}
double ToDouble(const std::string& s) {
  double v = 0;
  return absl::SimpleAtod(s, &v) ? v : 0;
}

}  // namespace

namespace {

// The argument and environment vectors of a worker's exec, made before fork:
// after it, the child makes only async-signal-safe calls.
struct ExecImage {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

// Fills `image` (which must not move afterwards: argv and envp point into it).
void PrepareExec(const WorkerSpawnOptions& options, ExecImage& image) {
  image.args = {options.python, "-m", "prs._worker"};
  image.args.insert(image.args.end(), options.arguments.begin(), options.arguments.end());
  for (auto& a : image.args) image.argv.push_back(a.data());
  image.argv.push_back(nullptr);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // The agent's credentials are not the job's: a script gets no token (and
  // no pointer to the agent's token file) through its environment.
  for (const char* secret : {"PRS_TOKEN", "PRS_TOKEN_FILE", "PRS_TLS_KEY", "PRS_TLS_CERT"}) {
    env.erase(secret);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  env["PRS_WORKER_FD"] = std::to_string(kWorkerFd);
  for (const auto& [k, v] : env) image.env.push_back(k + "=" + v);
  for (auto& e : image.env) image.envp.push_back(e.data());
  image.envp.push_back(nullptr);
}

// In the forked child: becomes the worker, or exits 126 (no cwd) or 127.
[[noreturn]] void ExecChild(const WorkerSpawnOptions& options, ExecImage& image, pid_t parent,
                            int out, int err, int sock) {
  ::setpgid(0, 0);
  // A worker never outlives its agent.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::chdir(options.cwd.c_str()) != 0) ::_exit(126);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::dup2(sock, kWorkerFd);  // dup2 clears FD_CLOEXEC on the copy
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  const std::string& python = options.python;
  ::execvpe(python.c_str(), image.argv.data(), image.envp.data());
  const int e = errno;
  const char prefix[] = "prs: cannot execute the worker interpreter ";
  [[maybe_unused]] ssize_t n = ::write(2, prefix, sizeof(prefix) - 1);
  n = ::write(2, python.data(), python.size());
  const char* why = strerror(e);
  n = ::write(2, ": ", 2);
  n = ::write(2, why, strlen(why));
  n = ::write(2, "\n", 1);
  ::_exit(127);
}

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(
    const WorkerSpawnOptions& options) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  ExecImage image;
  PrepareExec(options, image);
  int out = ::open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) {
    const int e = errno;
    CloseAll({out, err, sv[0], sv[1]});
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open worker log ", options.stdout_path, ": ", strerror(e)));
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    CloseAll({out, err, sv[0], sv[1]});
    return absl::ResourceExhaustedError(absl::StrCat("fork: ", strerror(e)));
  }
  if (pid == 0) ExecChild(options, image, parent, out, err, sv[1]);
  CloseAll({out, err, sv[1]});
  ::setpgid(pid, pid);  // also from the parent, so a kill right away hits the group
  return std::unique_ptr<WorkerProcess>(new WorkerProcess(pid, sv[0], options.clock));
}

WorkerProcess::~WorkerProcess() {
  if (!exited_) Kill(absl::Seconds(2));
  if (fd_ >= 0) ::close(fd_);
}

bool WorkerProcess::Reap(bool block) {
  if (exited_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exited_ = true;
    wait_status_ = status;
  } else if (r < 0) {
    exited_ = true;  // not our child any more
  }
  return exited_;
}

std::string WorkerProcess::exit_description() const {
  if (!exited_) return "running";
  if (WIFEXITED(wait_status_)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    const int sig = WTERMSIG(wait_status_);
    return absl::StrCat("killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return "ended";
}

absl::StatusOr<Frame> WorkerProcess::ReadFrame(absl::Duration timeout,
                                               const std::function<bool()>& abort) {
  const absl::Time deadline = clock_->Now() + timeout;
  char buf[64 * 1024];
  for (;;) {
    auto next = decoder_.Next();
    if (!next.ok()) return next.status();
    if (next->has_value()) return std::move(**next);
    if (abort && abort()) return absl::CancelledError("stopped by the agent");
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the worker did not answer in time");
    }
    struct pollfd p = {fd_, POLLIN, 0};
    const int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 100));
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno != EINTR)
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    if (r <= 0) continue;
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      // The worker closed its end: it is exiting. Collect how, and end any
      // process it left behind.
      if (!WaitExit(absl::Seconds(2))) ::kill(-pid_, SIGTERM);
      WaitExit(absl::Seconds(1));
      ReapGroup();
      return absl::UnavailableError(
          absl::StrCat("the worker process ended (", exit_description(), ")"));
    }
    decoder_.Append(absl::string_view(buf, static_cast<size_t>(n)));
  }
}

absl::StatusOr<WorkerStart> WorkerProcess::WaitReady(absl::Duration timeout,
                                                     const std::function<bool()>& abort) {
  auto frame = ReadFrame(timeout, abort);
  if (!frame.ok()) return frame.status();
  WorkerStart start;
  if (frame->type == FrameType::kReady) {
    start.ready = true;
    return start;
  }
  if (frame->type == FrameType::kInitFailed) {
    const auto& f = frame->fields;
    start.error = f.size() > 0 ? f[0] : "init failed";
    start.detail = f.size() > 1 ? f[1] : "";
    start.load_failed = f.size() > 2 && f[2] == "load";
    return start;
  }
  return absl::DataLossError(absl::StrCat("unexpected frame type ", static_cast<int>(frame->type),
                                          " while waiting for READY"));
}

absl::Status WorkerProcess::SendRun(int64_t task_id, const std::vector<std::string>& items) {
  Frame f;
  f.type = FrameType::kRun;
  f.fields.reserve(items.size() + 1);
  f.fields.push_back(std::to_string(task_id));
  f.fields.insert(f.fields.end(), items.begin(), items.end());
  return WriteFrame(fd_, f);
}

absl::StatusOr<WorkerResult> WorkerProcess::WaitResult(absl::Duration timeout,
                                                       const std::function<bool()>& abort) {
  auto frame = ReadFrame(timeout, abort);
  if (!frame.ok()) return frame.status();
  if (frame->type != FrameType::kResult || frame->fields.size() < 9) {
    return absl::DataLossError("the worker sent a malformed RESULT frame");
  }
  auto& f = frame->fields;
  WorkerResult r;
  r.ok = f[1] == "ok";
  r.items_succeeded = ToInt(f[2]);
  r.row_count = ToInt(f[3]);
  r.rows = std::move(f[4]);
  r.error = std::move(f[5]);
  r.detail = std::move(f[6]);
  r.run_seconds = ToDouble(f[7]);
  r.cpu_seconds = ToDouble(f[8]);
  if (f.size() > 9) r.items = f[9].empty() ? -1 : ToInt(f[9]);
  if (f.size() > 10) r.header = std::move(f[10]);
  return r;
}

// The leader is never reaped before its group is signalled: an unreaped
// (zombie) leader keeps its pid, so `kill(-pid_)` cannot reach a stranger, and
// children the script started (multiprocessing, subprocess) die with it.
bool WorkerProcess::HasExited() {
  if (exited_) return true;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;
  }
  return info.si_pid == pid_;
}

void WorkerProcess::ReapGroup() {
  if (exited_) return;
  ::kill(-pid_, SIGKILL);
  Reap(/*block=*/true);
}

bool WorkerProcess::WaitExit(absl::Duration wait) {
  const absl::Time deadline = clock_->Now() + wait;
  // A pidfd becomes readable when the process exits (Linux 5.3+): the wait
  // ends then, not up to a poll later. Without one, a bounded poll.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  bool exited = true;
  while (!HasExited()) {
    if (clock_->Now() >= deadline) {
      exited = false;
      break;
    }
    if (pidfd >= 0) {
      struct pollfd p = {pidfd, POLLIN, 0};
      ::poll(&p, 1, 20);
    } else {
      ::usleep(20'000);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return exited;
}

void WorkerProcess::Shutdown(absl::Duration grace) {
  if (exited_) return;
  Frame f;
  f.type = FrameType::kShutdown;
  if (!HasExited() && WriteFrame(fd_, f).ok()) WaitExit(grace);
  if (!HasExited()) {
    ::kill(-pid_, SIGTERM);
    WaitExit(absl::Seconds(2));
  }
  ReapGroup();
}

void WorkerProcess::DumpStacks(absl::Duration wait) {
  if (HasExited()) return;
  ::kill(pid_, SIGUSR1);
  WaitExit(wait);
}

void WorkerProcess::Kill(absl::Duration grace) {
  if (exited_) return;
  ::kill(-pid_, SIGTERM);
  WaitExit(grace);
  ReapGroup();
}

}  // namespace prs::agent

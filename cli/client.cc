#include "cli/client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/credentials.h"
#include "common/grpc_defaults.h"
#include "common/job_config.h"
#include "common/job_state.h"
#include "common/json.h"
#include "common/message_limits.h"
#include "common/snapshot.h"
#include "common/status_grpc.h"
#include "common/text.h"
#include "master/partitioner.h"
#include "prs/v1/job_service.grpc.pb.h"

namespace prs::cli {
namespace {

absl::Status Annotate(const grpc::Status& s, const std::string& address, bool tls) {
  absl::Status st = FromGrpcStatus(s);
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    // What the transport said that points at one fix.
    if (absl::StrContains(s.error_message(), "ALPN")) {
      return absl::UnavailableError(
          absl::StrCat("prs-master at ", address, " does not speak gRPC there (", s.error_message(),
                       "); is it the master's --http-listen port? give its --listen port"));
    }
    if (tls && absl::StrContains(s.error_message(), "certificate verify failed")) {
      return absl::UnavailableError(
          absl::StrCat("the certificate of prs-master at ", address,
                       " is not signed by the CA in --tls-ca ($PRS_TLS_CA): give the ca.pem that "
                       "deploy/make-certs.sh made with the master's certificate"));
    }
    return absl::UnavailableError(absl::StrCat(
        "cannot reach prs-master at ", address, " (", s.error_message(),
        "); start it with `prs-master --listen ", address,
        "`, or point --master / $PRS_MASTER at it",
        tls ? "; if it runs, check that its certificate is signed by --tls-ca ($PRS_TLS_CA) and "
              "names the host in --master, and that it serves TLS"
            : "; if it serves TLS, give --tls-ca ($PRS_TLS_CA), the CA that signed its "
              "certificate"));
  }
  return st;
}

// host:port, [v6]:port; not a URL.
absl::Status CheckMasterAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  if (absl::StrContains(address, "://") || port.empty() ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--master ($PRS_MASTER) '", address,
        "' is not host:port: give the master's address and gRPC port, e.g. 127.0.0.1:7600 "
        "(no scheme; TLS is --tls-ca)"));
  }
  return absl::OkStatus();
}

}  // namespace

class JobClient::Impl {
 public:
  Impl(const std::string& address, const Connection& connection)
      : address_(address), token_(connection.token), tls_(!connection.tls.ca.empty()) {
    auto credentials = MakeChannelCredentials(connection.tls);
    if (auto s = CheckTokenChannel(address, connection.tls, connection.token); !s.ok()) {
      credentials = s;
    }
    if (auto s = CheckMasterAddress(address); !s.ok()) credentials = s;
    if (!credentials.ok()) {
      init_ = credentials.status();
      credentials = grpc::InsecureChannelCredentials();  // never used: every call fails first
    }
    grpc::ChannelArguments args = DefaultChannelArguments();
    stub_ = v1::JobService::NewStub(grpc::CreateCustomChannel(address, *credentials, args));
  }
  std::string address_;
  std::string token_;
  bool tls_;
  absl::Status init_;  // a TLS file that cannot be read
  std::unique_ptr<v1::JobService::Stub> stub_;
};

namespace {

// One unary call with a deadline; a failure to connect names the fix.
template <typename Request, typename Response>
absl::StatusOr<Response> Call(const JobClient::Impl& impl,
                              grpc::Status (v1::JobService::Stub::*method)(grpc::ClientContext*,
                                                                           const Request&,
                                                                           Response*),
                              const Request& request, absl::Duration deadline) {
  if (!impl.init_.ok()) return impl.init_;
  grpc::ClientContext ctx;
  ctx.set_deadline(RpcDeadline(deadline));
  AddToken(ctx, impl.token_);
  Response response;
  grpc::Status s = (impl.stub_.get()->*method)(&ctx, request, &response);
  if (!s.ok()) return Annotate(s, impl.address_, impl.tls_);
  return response;
}

}  // namespace

JobClient::JobClient(const std::string& address, const Connection& connection)
    : impl_(std::make_unique<Impl>(address, connection)) {}
JobClient::~JobClient() = default;

absl::StatusOr<v1::SubmitJobResponse> JobClient::Submit(const v1::SubmitJobRequest& request) {
  // The master checks every path of a list_file at submit: give it time.
  return Call(*impl_, &v1::JobService::Stub::SubmitJob, request, absl::Minutes(10));
}

absl::StatusOr<v1::JobStatus> JobClient::Get(const std::string& job_id) {
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  return Call(*impl_, &v1::JobService::Stub::GetJob, req, absl::Seconds(10));
}

absl::StatusOr<std::vector<v1::JobStatus>> JobClient::List(int limit) {
  v1::ListJobsRequest req;
  req.set_limit(limit);
  auto resp = Call(*impl_, &v1::JobService::Stub::ListJobs, req, absl::Seconds(10));
  if (!resp.ok()) return resp.status();
  return std::vector<v1::JobStatus>(resp->jobs().begin(), resp->jobs().end());
}

absl::StatusOr<v1::JobStatus> JobClient::Cancel(const std::string& job_id) {
  v1::CancelJobRequest req;
  req.set_job_id(job_id);
  return Call(*impl_, &v1::JobService::Stub::CancelJob, req, absl::Seconds(30));
}

absl::StatusOr<v1::JobStatus> JobClient::Resume(const std::string& job_id) {
  v1::ResumeJobRequest req;
  req.set_job_id(job_id);
  return Call(*impl_, &v1::JobService::Stub::ResumeJob, req, absl::Seconds(60));
}

absl::StatusOr<v1::ListAgentsResponse> JobClient::ListAgents() {
  return Call(*impl_, &v1::JobService::Stub::ListAgents, v1::ListAgentsRequest(),
              absl::Seconds(10));
}

absl::StatusOr<v1::ListLogsResponse> JobClient::ListLogs(const std::string& job_id) {
  v1::ListLogsRequest req;
  req.set_job_id(job_id);
  return Call(*impl_, &v1::JobService::Stub::ListLogs, req, absl::Seconds(30));
}

absl::StatusOr<v1::ReadLogResponse> JobClient::ReadLog(const std::string& job_id,
                                                       const std::string& path, int64_t offset,
                                                       int64_t max_bytes) {
  v1::ReadLogRequest req;
  req.set_job_id(job_id);
  req.set_path(path);
  req.set_offset(offset);
  req.set_max_bytes(max_bytes);
  return Call(*impl_, &v1::JobService::Stub::ReadLog, req, absl::Seconds(30));
}

absl::StatusOr<v1::JobStatus> JobClient::Watch(
    const std::string& job_id, const std::function<void(const v1::JobStatus&)>& on_status) {
  if (!impl_->init_.ok()) return impl_->init_;
  std::mt19937 rng{std::random_device{}()};
  int failures = 0;
  for (;;) {
    grpc::ClientContext ctx;
    AddToken(ctx, impl_->token_);
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto reader = impl_->stub_->WatchJob(&ctx, req);
    v1::JobStatus status;
    bool got = false;
    while (reader->Read(&status)) {
      got = true;
      failures = 0;
      on_status(status);
      if (IsTerminal(status.state())) {
        reader->Finish().ok();
        return status;
      }
    }
    grpc::Status s = reader->Finish();
    const auto code = s.error_code();
    if (code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::INVALID_ARGUMENT ||
        code == grpc::StatusCode::PERMISSION_DENIED || code == grpc::StatusCode::UNAUTHENTICATED) {
      return FromGrpcStatus(s);
    }
    // The stream broke (master restarting?): reconnect with jittered backoff.
    ++failures;
    if (!got && failures > 60) return Annotate(s, impl_->address_, impl_->tls_);
    std::uniform_int_distribution<int> jitter(100, 500 + 100 * std::min(failures, 15));
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
  }
}

namespace {

// "-": the job's YAML (or JSON) from stdin, relative paths against the
// current folder; at most kMaxJobSpecBytes.
absl::StatusOr<v1::JobSpec> LoadJob(const std::string& job_file,
                                    const std::vector<std::string>& overrides) {
  if (job_file != "-") return LoadJobFile(job_file, overrides);
  if (::isatty(0) != 0) std::fputs("prs: reading the job from stdin; end it with Ctrl-D\n", stderr);
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) {
    text.append(buffer, n);
    if (static_cast<int64_t>(text.size()) > kMaxJobSpecBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("the job on stdin is over ", kMaxJobSpecBytes >> 20,
                       " MiB; a job file is a few lines: list the inputs in a list_file"));
    }
  }
  if (std::ferror(stdin)) return absl::InvalidArgumentError("the job on stdin cannot be read");
  return ParseJobYaml(text, /*base_dir=*/"", overrides);
}

}  // namespace

absl::StatusOr<v1::SubmitJobRequest> PrepareSubmit(const std::string& job_file,
                                                   const std::vector<std::string>& overrides) {
  auto spec = LoadJob(job_file, overrides);
  if (!spec.ok()) return spec.status();
  if (auto s = ValidateJobSpec(*spec, /*check_files=*/true); !s.ok()) return s;
  // As the user, with the paths named: the master names only the lines.
  if (auto s = master::CheckInputsAtSubmit(
          *spec, [] { return false; }, /*name_paths=*/true);
      !s.ok()) {
    return s;
  }
  auto snapshot = PackDirectory(spec->source_directory(), kMaxSnapshotBytes);
  if (!snapshot.ok()) return snapshot.status();
  // As the master will (paths counted, at most 10,000 files), before sending.
  if (auto s = CheckSnapshot(*snapshot, kMaxSnapshotBytes); !s.ok()) return s;
  v1::SubmitJobRequest req;
  *req.mutable_spec() = *std::move(spec);
  *req.mutable_snapshot() = *std::move(snapshot);
  return req;
}

std::string StatusJson(const v1::JobStatus& st) {
  const auto& c = st.counts();
  std::string notes;
  for (const auto& note : st.notes()) {
    absl::StrAppend(&notes, notes.empty() ? "" : ", ", "\"", JsonEscape(note), "\"");
  }
  return absl::StrFormat(
      "{\"job_id\": \"%s\", \"name\": \"%s\", \"state\": \"%s\", \"reason\": \"%s\", "
      "\"owner\": \"%s\", \"first_error\": \"%s\", \"first_error_log\": \"%s\", "
      "\"output_file\": \"%s\", "
      "\"log_dir\": \"%s\", "
      "\"submit_time_ms\": %d, "
      "\"start_time_ms\": %d, \"end_time_ms\": %d, \"active_agents\": %d, "
      "\"items_per_second\": %.3f, \"counts\": {\"mini_batches_created\": %d, "
      "\"mini_batches_processed\": %d, \"mini_batches_failed\": %d, \"items_total\": %d, "
      "\"items_succeeded\": %d, \"items_failed\": %d, \"rows_written\": %d, \"retries\": %d, "
      "\"listing_done\": %s, \"plans\": %d}, \"notes\": [%s]}",
      JsonEscape(st.job_id()), JsonEscape(st.name()), JobStateName(st.state()),
      JsonEscape(st.reason()), JsonEscape(st.owner()), JsonEscape(st.first_error()),
      JsonEscape(st.first_error_log()), JsonEscape(st.output_file()), JsonEscape(st.log_dir()),
      st.submit_time_ms(), st.start_time_ms(), st.end_time_ms(), st.active_agents(),
      st.items_per_second(), c.mini_batches_created(), c.mini_batches_processed(),
      c.mini_batches_failed(), c.items_total(), c.items_succeeded(), c.items_failed(),
      c.rows_written(), c.retries(), c.listing_done() ? "true" : "false", c.plans(), notes);
}

std::string RawStatusText(const v1::JobStatus& st);

std::string Plural(int64_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

std::string StatusText(const v1::JobStatus& st) { return PrintableText(RawStatusText(st)); }

// StatusText before control bytes (a script's error may hold some) are escaped.
std::string RawStatusText(const v1::JobStatus& st) {
  const auto& c = st.counts();
  std::string out = absl::StrFormat("job %s: %s\n", st.job_id(), JobStateName(st.state()));
  if (!st.owner().empty()) absl::StrAppend(&out, "  owner: ", st.owner(), "\n");
  if (!st.reason().empty()) absl::StrAppend(&out, "  reason: ", st.reason(), "\n");
  if (!st.first_error().empty() && st.reason().find(st.first_error()) == std::string::npos) {
    absl::StrAppend(&out, "  first error: ", st.first_error(), "\n");
  }
  absl::StrAppendFormat(
      &out, "  mini-batches: %d processed, %d failed of %d%s%s\n", c.mini_batches_processed(),
      c.mini_batches_failed(), c.mini_batches_created(),
      c.listing_done()         ? ""
      : IsTerminal(st.state()) ? " (listing stopped)"
                               : " (still listing)",
      c.plans() > 0 ? absl::StrCat(" (", c.plans(), " plans of tabular files)") : "");
  absl::StrAppendFormat(&out, "  items: %d succeeded, %d failed of %d\n", c.items_succeeded(),
                        c.items_failed(), c.items_total());
  if (!st.reused_from().empty()) {
    absl::StrAppend(&out, "  reused: the result of job ", st.reused_from(),
                    " (allow_reuse); nothing ran, its logs are that job's\n");
  }
  if (!st.output_file().empty()) {
    absl::StrAppendFormat(&out, "  output: %s (%s)\n", st.output_file(),
                          Plural(c.rows_written(), "row"));
  } else if (!st.output_dir().empty()) {
    absl::StrAppendFormat(&out, "  output folder: %s\n", st.output_dir());
  } else if (st.reused_from().empty()) {
    absl::StrAppend(&out, "  output folder: jobs/", st.job_id(),
                    "/output in each agent's work dir\n");
  }
  absl::StrAppendFormat(&out, "  logs: %s\n", st.log_dir());
  for (const auto& note : st.notes())
    absl::StrAppend(&out, "  note: ", Printable(note, 2000), "\n");
  if (st.end_time_ms() > 0 && st.start_time_ms() > 0) {
    absl::StrAppendFormat(&out, "  run time: %.1fs\n",
                          (st.end_time_ms() - st.start_time_ms()) / 1000.0);
  }
  return out;
}

void ProgressPrinter::Update(const v1::JobStatus& st) {
  // Notes first, each once, on lines of their own.
  for (int i = notes_printed_; i < st.notes_size(); ++i) {
    if (tty_ && drawn_) std::fputs("\r\x1b[K", stderr);
    std::fprintf(stderr, "prs: note: %s\n", Printable(st.notes(i), 2000).c_str());
  }
  notes_printed_ = std::max(notes_printed_, st.notes_size());
  const auto& c = st.counts();
  const int64_t done = c.items_succeeded() + c.items_failed();
  const int64_t total = c.items_total();
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
  std::string eta = "?";
  if (c.listing_done() && st.items_per_second() > 0) {
    eta = FormatDuration(static_cast<double>(total - done) / st.items_per_second());
  }
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
    std::string line = absl::StrFormat(
        "\r[%s] %3d%% %d/%d items, %d/%d mini-batches, %d failed, %.0f items/s, ETA %s  ", bar,
        static_cast<int>(frac * 100), done, total, c.mini_batches_processed(),
        c.mini_batches_created(), c.items_failed(), st.items_per_second(), eta);
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  std::string line = absl::StrFormat(
      "%s: %s %d/%d items (%d failed), %d/%d mini-batches%s", st.job_id(), JobStateName(st.state()),
      done, total, c.items_failed(), c.mini_batches_processed(), c.mini_batches_created(),
      c.listing_done() || IsTerminal(st.state()) ? "" : " (listing inputs)");
  if (line == last_line_ || (now - last_print_ms_ < 2000 && !IsTerminal(st.state()))) return;
  last_line_ = line;
  last_print_ms_ = now;
  std::fprintf(stderr, "%s\n", line.c_str());
}

void ProgressPrinter::Done() {
  if (tty_ && drawn_) std::fputs("\n", stderr);
}

}  // namespace prs::cli

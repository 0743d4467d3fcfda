#include "master/web.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/job_state.h"
#include "master/job_manager.h"
#include "master/log_store.h"
#include "master/master_server.h"
#include "master/metrics.h"
#include "master/rpc_access.h"

namespace prs::master {
namespace {

// The HTTP routes' callers, as their RPCs' (master/rpc_access.h).
constexpr Access kMetricsAccess{"GET /metrics", Roles({Role::kRead, Role::kAdmin}), "read or admin",
                                0};
constexpr Access kNodesAccess{"GET /api/nodes", kListAgents.roles, kListAgents.needs, 0};
constexpr Access kJobsAccess{"GET /api/jobs", kListJobs.roles, kListJobs.needs, 0};

// Ended jobs whose series /metrics keeps (with every active one): the label
// set stays bounded however many jobs the master has run.
constexpr int kEndedJobsInMetrics = 20;

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

HttpResponse Error(int status, const std::string& message) {
  HttpResponse r = HttpResponse::Text(status, message);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"prs\"");
  return r;
}

HttpResponse FromStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return Error(404, std::string(s.message()));
    case absl::StatusCode::kPermissionDenied:
      return Error(403, std::string(s.message()));
    case absl::StatusCode::kUnauthenticated:
      return Error(401, std::string(s.message()));
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return Error(400, std::string(s.message()));
    default:
      return Error(500, std::string(s.message()));
  }
}

// A job's status as JSON, with its queue when it is active.
std::string JobJson(const v1::JobStatus& status, const JobManager::QueueSize* queue) {
  std::string json = ToJson(status);
  if (queue != nullptr && absl::EndsWith(json, "}")) {
    json.pop_back();
    absl::StrAppend(&json, ",\"queue\":{\"pending\":", queue->pending,
                    ",\"running\":", queue->leased, "}}");
  }
  return json;
}

using Labels = PrometheusWriter::Labels;

void WriteJobMetrics(PrometheusWriter& w, const JobManager::JobsForMetrics& jobs,
                     const std::map<std::string, JobManager::QueueSize>& queues) {
  std::map<std::string, int64_t> by_state;
  for (v1::JobState s : {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
    auto it = jobs.by_state.find(s);
    by_state[JobStateName(s)] = it != jobs.by_state.end() ? it->second : 0;
  }
  std::vector<const v1::JobStatus*> shown;
  for (const auto& j : jobs.shown) shown.push_back(&j);
  for (const auto& [state, n] : by_state) {
    w.Sample("prs_jobs", "gauge", "Jobs the master holds, by state.", {{"state", state}}, n);
  }
  for (const auto* j : shown) {
    w.Sample("prs_job_info", "gauge",
             "1 for each job with series here (active, or recently ended).",
             {{"job_id", j->job_id()},
              {"name", j->name()},
              {"owner", j->owner()},
              {"state", JobStateName(j->state())}},
             1);
  }
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*value)(const v1::JobCounts&);
  };
  static constexpr Family kCounts[] = {
      {"prs_job_mini_batches_created_total", "counter", "Mini-batches created.",
       [](const v1::JobCounts& c) { return c.mini_batches_created(); }},
      {"prs_job_mini_batches_retried_total", "counter", "Attempts that were retried.",
       [](const v1::JobCounts& c) { return c.retries(); }},
      {"prs_job_items_succeeded_total", "counter", "Items (files or records) that succeeded.",
       [](const v1::JobCounts& c) { return c.items_succeeded(); }},
      // A gauge: a resume runs the failed items again and takes them off.
      {"prs_job_items_failed", "gauge", "Items that failed (a resume takes its retried ones off).",
       [](const v1::JobCounts& c) { return c.items_failed(); }},
      {"prs_job_items", "gauge", "Items in the mini-batches created so far.",
       [](const v1::JobCounts& c) { return c.items_total(); }},
      {"prs_job_rows_written_total", "counter", "Rows appended to the job's output file.",
       [](const v1::JobCounts& c) { return c.rows_written(); }},
  };
  for (const Family& f : kCounts) {
    for (const auto* j : shown) {
      w.Sample(f.name, f.type, f.help, {{"job_id", j->job_id()}},
               static_cast<double>(f.value(j->counts())));
    }
  }
  for (const auto* j : shown) {
    const auto& c = j->counts();
    auto q = queues.find(j->job_id());
    const JobManager::QueueSize queue = q != queues.end() ? q->second : JobManager::QueueSize{};
    const int64_t done = c.mini_batches_processed();
    const Labels job = {{"job_id", j->job_id()}};
    auto with = [&](const char* state) {
      Labels l = job;
      l.emplace_back("state", state);
      return l;
    };
    const char* help = "The job's mini-batches by state now (pending: queued, running: leased).";
    w.Sample("prs_job_mini_batches", "gauge", help, with("pending"),
             static_cast<double>(queue.pending));
    w.Sample("prs_job_mini_batches", "gauge", help, with("running"),
             static_cast<double>(queue.leased));
    w.Sample("prs_job_mini_batches", "gauge", help, with("succeeded"),
             static_cast<double>(done - c.mini_batches_failed()));
    w.Sample("prs_job_mini_batches", "gauge", help, with("failed"),
             static_cast<double>(c.mini_batches_failed()));
  }
  for (const auto* j : shown) {
    w.Sample(
        "prs_job_items_per_second", "gauge",
        "Items per second: over the last minute while the job runs, over the run once it ended.",
        {{"job_id", j->job_id()}}, j->items_per_second());
  }
}

void WriteNodeMetrics(PrometheusWriter& w, const v1::ListAgentsResponse& agents) {
  w.Sample("prs_agents_connected", "gauge", "Agents with a live session.", {},
           agents.agents_size());
  for (const auto& a : agents.agents()) {
    w.Sample("prs_node_workers_busy", "gauge", "Workers running a mini-batch, by node.",
             {{"node", a.node_id()}}, a.busy_workers());
  }
  for (const auto& a : agents.agents()) {
    w.Sample("prs_node_leases", "gauge", "Mini-batches a node holds (queued, running, reporting).",
             {{"node", a.node_id()}}, static_cast<double>(a.leases()));
  }
  for (const auto& a : agents.agents()) {
    w.Sample("prs_node_gpus", "gauge", "GPUs a node's workers may use.", {{"node", a.node_id()}},
             a.gpus_size());
  }
}

void WriteCounters(PrometheusWriter& w, MasterMetrics& m) {
  auto load = [](const std::atomic<uint64_t>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
  };
  w.Sample("prs_agents_registered_total", "counter", "Agent sessions registered.", {},
           load(m.agents_registered));
  w.Sample("prs_agents_lost_total", "counter",
           "Agents declared lost (silent past --agent-timeout).", {}, load(m.agents_lost));
  w.Sample("prs_mini_batches_dispatched_total", "counter", "Mini-batches leased to agents.", {},
           load(m.mini_batches_dispatched));
  w.Sample("prs_mini_batches_committed_total", "counter",
           "Mini-batch results committed (rows in the output, state in the store).", {},
           load(m.mini_batches_committed));
  const char* results = "Results reported, by whether they held the current lease.";
  w.Sample("prs_mini_batch_results_total", "counter", results, {{"result", "accepted"}},
           load(m.results_accepted));
  w.Sample("prs_mini_batch_results_total", "counter", results, {{"result", "rejected"}},
           load(m.results_rejected));
  w.Histogram("prs_mini_batch_pull_to_report_seconds",
              "Seconds from a mini-batch's lease to its result reaching the master.", {},
              m.pull_to_report_seconds.Read());
  w.Histogram("prs_commit_duration_seconds",
              "Seconds to commit one job's reported results (output and store).", {},
              m.commit_seconds.Read());
  if (m.rpcs != nullptr) {
    static const char* const kCodes[] = {"OK",
                                         "CANCELLED",
                                         "UNKNOWN",
                                         "INVALID_ARGUMENT",
                                         "DEADLINE_EXCEEDED",
                                         "NOT_FOUND",
                                         "ALREADY_EXISTS",
                                         "PERMISSION_DENIED",
                                         "RESOURCE_EXHAUSTED",
                                         "FAILED_PRECONDITION",
                                         "ABORTED",
                                         "OUT_OF_RANGE",
                                         "UNIMPLEMENTED",
                                         "INTERNAL",
                                         "UNAVAILABLE",
                                         "DATA_LOSS",
                                         "UNAUTHENTICATED"};
    for (const auto& [method, code, n] : m.rpcs->Read()) {
      w.Sample("prs_grpc_requests_total", "counter", "gRPC calls handled, by method and code.",
               {{"method", method}, {"code", kCodes[code]}}, static_cast<double>(n));
    }
  }
}

}  // namespace

std::string Web::Metrics() const {
  PrometheusWriter w;
  const auto queues = manager_->Queues();
  WriteJobMetrics(w, manager_->MetricsJobs(kEndedJobsInMetrics), queues);
  WriteNodeMetrics(w, manager_->ListAgents());
  WriteCounters(w, manager_->metrics());
  WriteProcessMetrics(w);
  return w.text();
}

HttpResponse Web::Handle(const HttpRequest& request) const {
  HttpResponse r = Route(request);
  // Every answer runs only the page's own files: no inline script, no other
  // origin, no framing (a log file opened directly runs nothing either).
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  return r;
}

HttpResponse Web::Route(const HttpRequest& request) const {
  if (request.path == "/healthz") return HttpResponse::Text(200, "ok");
  if (const WebAsset* asset = FindWebAsset(request.path)) {
    HttpResponse r;
    r.content_type = asset->content_type;
    r.body.assign(reinterpret_cast<const char*>(asset->data), asset->size);
    return r;
  }
  const bool metrics = request.path == "/metrics";
  if (!metrics && !absl::StartsWith(request.path, "/api/")) return Error(404, "no such page");
  Principal principal = Principal::Local();
  if (auth_ != nullptr) {
    absl::string_view header = request.authorization;
    if (!absl::ConsumePrefix(&header, "Bearer ")) {
      return Error(401, "give your token: Authorization: Bearer <token>");
    }
    auto found = auth_->Authenticate(absl::StripAsciiWhitespace(header));
    if (!found.ok()) {
      // Not the CLI's words: a browser or Prometheus has no --token-file.
      return Error(401,
                   "this token is not in the master's tokens file: give one that "
                   "deploy/make-token.sh made for you (role read to scrape /metrics)");
    }
    principal = *std::move(found);
  }
  const Access& access = metrics                                        ? kMetricsAccess
                         : absl::StartsWith(request.path, "/api/nodes") ? kNodesAccess
                                                                        : kJobsAccess;
  if ((principal.roles & access.roles) == 0) {
    return Error(
        403, absl::StrCat("'", principal.name, "' (", RolesText(principal.roles), ") may not read ",
                          access.rpc, ": that needs the role ", access.needs));
  }
  if (metrics) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = Metrics();
    return r;
  }
  return Api(request, principal);
}

HttpResponse Web::Api(const HttpRequest& request, const Principal& principal) const {
  if (request.path == "/api/nodes") return HttpResponse::Json(ToJson(manager_->ListAgents()));
  if (request.path == "/api/jobs") {
    const auto queues = manager_->Queues();
    int limit = 100;
    if (!request.Query("limit").empty() &&
        (!absl::SimpleAtoi(request.Query("limit"), &limit) || limit < 1 || limit > 1000)) {
      return Error(400, "limit: a number from 1 to 1000");
    }
    std::string json = "{\"jobs\":[";
    bool first = true;
    for (const auto& j : manager_->ListJobs(
             limit, [&](const std::string& owner) { return principal.CanSee(owner); })) {
      auto q = queues.find(j.job_id());
      absl::StrAppend(&json, first ? "" : ",",
                      JobJson(j, q != queues.end() ? &q->second : nullptr));
      first = false;
    }
    return HttpResponse::Json(json + "]}");
  }
  absl::string_view rest = request.path;
  if (!absl::ConsumePrefix(&rest, "/api/jobs/") || rest.empty()) return Error(404, "no such page");
  const size_t slash = rest.find('/');
  const std::string job_id(rest.substr(0, slash));
  return Job(job_id, slash == absl::string_view::npos ? "" : std::string(rest.substr(slash)),
             request, principal);
}

HttpResponse Web::Job(const std::string& job_id, const std::string& rest,
                      const HttpRequest& request, const Principal& principal) const {
  auto owner = manager_->Owner(job_id);
  if (!owner.ok()) return FromStatus(owner.status());
  if (!principal.CanSee(*owner)) {
    return Error(403, absl::StrCat("job ", job_id, " belongs to '", *owner,
                                   "'; only its owner, a reader or an admin may see it"));
  }
  if (rest.empty()) {
    auto status = manager_->GetJob(job_id);
    if (!status.ok()) return FromStatus(status.status());
    const auto queues = manager_->Queues();
    auto q = queues.find(job_id);
    return HttpResponse::Json(JobJson(*status, q != queues.end() ? &q->second : nullptr));
  }
  auto dir = manager_->LogDir(job_id);
  if (!dir.ok()) return FromStatus(dir.status());
  if (rest == "/logs") return HttpResponse::Json(ToJson(LogTreeListing(*dir)));
  if (rest == "/log") {
    int64_t offset = 0, max_bytes = kMaxReadLogBytes;
    if ((!request.Query("offset").empty() &&
         (!absl::SimpleAtoi(request.Query("offset"), &offset) || offset < 0)) ||
        (!request.Query("max_bytes").empty() &&
         (!absl::SimpleAtoi(request.Query("max_bytes"), &max_bytes) || max_bytes < 1))) {
      return Error(400, "offset and max_bytes: whole numbers, offset from 0, max_bytes from 1");
    }
    int64_t size = 0;
    auto data = LogStore::Read(*dir, request.Query("path"), offset,
                               std::min(max_bytes, kMaxReadLogBytes), &size);
    if (!data.ok()) return FromStatus(data.status());
    HttpResponse r = HttpResponse::Text(200, "");
    r.body = *std::move(data);
    r.headers.emplace_back("X-Prs-File-Size", absl::StrCat(size));
    return r;
  }
  return Error(404, "no such page");
}

v1::ListLogsResponse LogTreeListing(const std::string& log_dir) {
  v1::ListLogsResponse r;
  r.set_log_dir(log_dir);
  for (const auto& f : LogStore::List(log_dir)) {
    auto* file = r.add_files();
    file->set_path(f.path);
    file->set_size(f.size);
  }
  return r;
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartWebServer(const MasterOptions& options,
                                                           const Web& web) {
  if (auto s = CheckExposure(options.http_listen, !options.tls.cert.empty(),
                             !options.tokens_file.empty(), options.insecure);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--http-listen: ", s.message()));
  }
  HttpServerOptions http;
  http.listen = options.http_listen;
  http.tls_cert = options.tls.cert;
  http.tls_key = options.tls.key;
  http.tls_client_ca = options.tls.ca;
  return HttpServer::Start(http, [&web](const HttpRequest& r) { return web.Handle(r); });
}

}  // namespace prs::master

#ifndef PRS_MASTER_WEB_H_
#define PRS_MASTER_WEB_H_

// The master's read-only window over HTTP (`prs-master --http-listen`):
//
//   /metrics                 Prometheus text format (role read or admin)
//   /                        the dashboard: static HTML, CSS and JavaScript
//   /api/jobs                the jobs the caller may see, newest first (JSON)
//   /api/jobs/JOB            one job, with its queue (JSON)
//   /api/jobs/JOB/logs       the files of its log tree (JSON)
//   /api/jobs/JOB/log?path=P&offset=N   part of one file (text; 1 MiB at most)
//   /api/nodes               the agents, their workers and running mini-batches
//   /healthz                 "ok"
//
// Authentication is the gRPC API's: with tokens, every data route needs
// "Authorization: Bearer <token>" and the role the matching RPC needs
// (master/rpc_access.h); a job is seen by whom it may be seen. The static
// files carry no data and need no token (the page asks for one).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "master/auth.h"
#include "master/http_server.h"
#include "prs/v1/job_service.pb.h"

namespace prs::master {

class JobManager;

class Web {
 public:
  // `auth` may be null: every caller is "local" (a loopback master).
  Web(JobManager* manager, const Authenticator* auth) : manager_(manager), auth_(auth) {}
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  // /metrics's text, for a caller that may read it.
  std::string Metrics() const;
  HttpResponse Route(const HttpRequest& request) const;
  HttpResponse Api(const HttpRequest& request, const Principal& principal) const;
  HttpResponse Job(const std::string& job_id, const std::string& rest, const HttpRequest& request,
                   const Principal& principal) const;

  JobManager* const manager_;
  const Authenticator* const auth_;
};

// The files of a job's log tree, sorted (ListLogs and /api/jobs/JOB/logs).
v1::ListLogsResponse LogTreeListing(const std::string& log_dir);

struct MasterOptions;
// Serves `web` on options.http_listen: HTTPS with options.tls's certificate
// when it has one. The address must pass CheckExposure as --listen does.
absl::StatusOr<std::unique_ptr<HttpServer>> StartWebServer(const MasterOptions& options,
                                                           const Web& web);

// The dashboard's files (master/web/), built into the binary.
struct WebAsset {
  const char* path;  // "/", "/app.js", ...
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
const WebAsset* FindWebAsset(const std::string& path);

}  // namespace prs::master

#endif  // PRS_MASTER_WEB_H_

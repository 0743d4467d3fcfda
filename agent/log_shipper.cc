#include "agent/log_shipper.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "spdlog/spdlog.h"

namespace prs::agent {

namespace fs = std::filesystem;

LogShipper::LogShipper(MasterClient* client, LogAppender* appender,
                       std::function<std::string()> current_job)
    : client_(client), appender_(appender), current_job_(std::move(current_job)) {}

void LogShipper::Add(const std::string& job_id, const std::string& log_dir) {
  absl::MutexLock lock(&mu_);
  jobs_[job_id] = log_dir;
}

void LogShipper::ShipNow() {
  absl::MutexLock lock(&mu_);
  ship_now_ = true;
}

void LogShipper::Finish() {
  absl::MutexLock lock(&mu_);
  finishing_ = true;
}

void LogShipper::Run() {
  for (;;) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return finishing_ || ship_now_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), absl::Seconds(1));
      last = finishing_;
      ship_now_ = false;
    }
    ShipOnce(last);
    if (last) return;
  }
}

void LogShipper::ShipOnce(bool last) {
  appender_->Retry();
  std::map<std::string, std::string> jobs;
  {
    absl::MutexLock lock(&mu_);
    jobs = jobs_;
  }
  // Read after the jobs: a job added since runs, and is not completed early.
  const std::string current = current_job_();
  for (const auto& [job_id, log_dir] : jobs) {
    bool idle = ShipJob(job_id, log_dir, last);
    if (job_id == current && !last) continue;
    // A job this agent no longer runs: ship what is left, say that its logs
    // are complete, and drop it.
    for (int round = 0; !idle && round < 8; ++round) idle = ShipJob(job_id, log_dir, last);
    if (idle && SendComplete(job_id, last)) {
      {
        absl::MutexLock lock(&mu_);
        jobs_.erase(job_id);
      }
      shipped_.erase(job_id);
    }
  }
}

// The exiting agent ships with the session it has; otherwise one is made.
std::string LogShipper::Session(bool last) {
  return last ? client_->CurrentSession() : client_->EnsureSession();
}

bool LogShipper::SendComplete(const std::string& job_id, bool last) {
  const std::string agent_id = Session(last);
  if (agent_id.empty()) return false;
  v1::ShipLogsRequest req;
  req.set_agent_id(agent_id);
  req.set_job_id(job_id);
  req.set_complete(true);
  const absl::Status s = client_->ShipLogs(req).status();
  // An unknown job (a new state dir) has nothing to wait for.
  return s.ok() || s.code() == absl::StatusCode::kFailedPrecondition;
}

bool LogShipper::Flush(const std::string& job_id, bool last, std::vector<v1::LogChunk>& batch,
                       Files& files) {
  if (batch.empty()) return true;
  const std::string agent_id = Session(last);
  if (agent_id.empty()) return false;
  v1::ShipLogsRequest req;
  req.set_agent_id(agent_id);
  req.set_job_id(job_id);
  for (auto& c : batch) *req.add_chunks() = std::move(c);
  batch.clear();
  absl::StatusOr<v1::ShipLogsResponse> resp = client_->ShipLogs(req);
  if (!resp.ok()) {
    if (resp.status().code() == absl::StatusCode::kFailedPrecondition) {
      // The master does not know the job (a new state dir): nothing to ship to.
      spdlog::warn("not shipping logs of job={}: {}", job_id, std::string(resp.status().message()));
      absl::MutexLock lock(&mu_);
      jobs_.erase(job_id);
      return false;
    }
    spdlog::warn("shipping logs of job={} failed: {}", job_id,
                 std::string(resp.status().message()));
    return false;
  }
  for (int i = 0; i < req.chunks_size() && i < resp->sizes_size(); ++i) {
    files[req.chunks(i).path()].offset = resp->sizes(i);
  }
  return true;
}

bool LogShipper::ShipJob(const std::string& job_id, const std::string& log_dir, bool last) {
  Files& files = shipped_[job_id];
  std::vector<v1::LogChunk> batch;
  int64_t batch_bytes = 0;
  bool sent_any = false;
  auto flush = [&]() -> bool {
    const bool had = !batch.empty();
    batch_bytes = 0;
    if (!Flush(job_id, last, batch, files)) return false;
    sent_any = sent_any || had;
    return true;
  };
  std::error_code ec;
  for (fs::recursive_directory_iterator it(log_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const std::string rel = fs::relative(it->path(), log_dir, fec).string();
    if (rel.rfind("user/", 0) != 0 && rel.rfind("sys/node/", 0) != 0 &&
        rel.rfind("perf/", 0) != 0) {
      continue;
    }
    if (!ShipFile(it->path().string(), rel, files[rel], batch, batch_bytes, flush)) return false;
  }
  if (!flush()) return false;
  return !sent_any;
}

bool LogShipper::ShipFile(const std::string& path, const std::string& rel, ShippedFile& f,
                          std::vector<v1::LogChunk>& batch, int64_t& batch_bytes,
                          const std::function<bool()>& flush) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return true;
  const bool rewritten = (f.inode != 0 && f.inode != st.st_ino) || st.st_size < f.offset;
  f.inode = st.st_ino;
  if (!rewritten && st.st_size == f.offset) return true;
  std::ifstream in(path, std::ios::binary);
  if (!in) return true;
  int64_t offset = rewritten ? 0 : f.offset;
  in.seekg(offset);
  // A rewritten file starts over: its first chunk replaces the master's copy,
  // and the rest follow as appends, so no request outgrows ShipLogs' bound
  // however large the file.
  bool replace = rewritten;
  const int64_t limit = std::min<int64_t>(st.st_size, offset + kBatchBytes);
  while (offset < limit) {
    const int64_t n = std::min<int64_t>(kChunkBytes, limit - offset);
    v1::LogChunk c;
    c.set_path(rel);
    c.set_offset(offset);
    c.set_replace(replace);
    replace = false;
    std::string data(static_cast<size_t>(n), '\0');
    in.read(data.data(), n);
    data.resize(static_cast<size_t>(in.gcount()));
    if (data.empty()) break;
    offset += static_cast<int64_t>(data.size());
    batch_bytes += static_cast<int64_t>(data.size());
    c.set_data(std::move(data));
    batch.push_back(std::move(c));
    if (batch_bytes >= kBatchBytes && !flush()) return false;
  }
  return true;
}

}  // namespace prs::agent

#include "master/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace prs::master {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double value) {
  if (!(value >= 0)) value = 0;  // NaN and clock steps backwards
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(std::min(value, 1e9) * 1e6)),
                        std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

RpcCounts::RpcCounts(const std::vector<std::string>& methods) : names_(methods) {
  names_.push_back("other");
  for (size_t i = 0; i < names_.size(); ++i) index_.emplace(names_[i], i);
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(names_.size() * kCodes);
}

void RpcCounts::Count(absl::string_view method, int code) {
  auto it = index_.find(method);
  const size_t row = it != index_.end() ? it->second : names_.size() - 1;
  const int column = code >= 0 && code < kCodes ? code : 2;  // UNKNOWN
  counts_[row * kCodes + column].fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::tuple<std::string, int, uint64_t>> RpcCounts::Read() const {
  std::vector<std::tuple<std::string, int, uint64_t>> out;
  for (size_t row = 0; row < names_.size(); ++row) {
    for (int code = 0; code < kCodes; ++code) {
      const uint64_t n = counts_[row * kCodes + code].load(std::memory_order_relaxed);
      if (n > 0) out.emplace_back(names_[row], code, n);
    }
  }
  return out;
}

namespace {

// Bucket bounds in seconds: a mini-batch's round trip runs from milliseconds
// to its run_invocation_timeout; a commit from a fraction of a millisecond
// (no fsync) to seconds (a slow disk).
std::vector<double> RoundTripBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}
std::vector<double> CommitBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

// A label value: backslash, double quote and line feed escaped.
std::string EscapeLabel(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

MasterMetrics::MasterMetrics()
    : pull_to_report_seconds(RoundTripBuckets()), commit_seconds(CommitBuckets()) {}

void PrometheusWriter::Header(absl::string_view family, absl::string_view type,
                              absl::string_view help) {
  if (family == last_family_) return;
  last_family_ = std::string(family);
  absl::StrAppend(&out_, "# HELP ", family, " ", help, "\n# TYPE ", family, " ", type, "\n");
}

void PrometheusWriter::Line(absl::string_view name, const Labels& labels, double value) {
  out_.append(name.data(), name.size());
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      absl::StrAppend(&out_, i ? "," : "", labels[i].first, "=\"", EscapeLabel(labels[i].second),
                      "\"");
    }
    out_ += '}';
  }
  absl::StrAppend(&out_, " ", FormatValue(value), "\n");
}

void PrometheusWriter::Sample(absl::string_view family, absl::string_view type,
                              absl::string_view help, const Labels& labels, double value) {
  Header(family, type, help);
  Line(family, labels, value);
}

void PrometheusWriter::Histogram(absl::string_view family, absl::string_view help,
                                 const Labels& labels, const Histogram::Snapshot& s) {
  Header(family, "histogram", help);
  const std::string bucket = absl::StrCat(family, "_bucket");
  for (size_t i = 0; i <= s.bounds.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf");
    Line(bucket, with_le, static_cast<double>(s.cumulative[i]));
  }
  Line(absl::StrCat(family, "_sum"), labels, s.sum);
  Line(absl::StrCat(family, "_count"), labels, static_cast<double>(s.count));
}

void WriteProcessMetrics(PrometheusWriter& w) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::stringstream text;
  text << stat_file.rdbuf();
  const std::string stat = text.str();
  // The fields after the command name, which may hold spaces and ')'.
  const size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
    if (f.size() > 22) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      w.Sample("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
               {}, cpu);
      std::ifstream uptime_file("/proc/uptime");
      double uptime = 0;
      uptime_file >> uptime;
      const double now = static_cast<double>(::time(nullptr));
      const double started = now - uptime + std::stod(f[19]) / ticks;
      w.Sample("process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", {}, std::floor(started));
      w.Sample("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", {},
               std::stod(f[20]));
      w.Sample("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", {},
               std::stod(f[21]) * page);
    }
  }
  int fds = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++fds;
    }
    ::closedir(dir);
    --fds;  // the one opendir holds
  }
  w.Sample("process_open_fds", "gauge", "Number of open file descriptors.", {}, fds);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    w.Sample("process_max_fds", "gauge", "Maximum number of open file descriptors.", {},
             static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace prs::master

#include "master/metrics.h"

#include <catch2/catch.hpp>
#include <string>

namespace prs::master {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("a histogram counts each value in its bucket, cumulatively, with its sum") {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0, -1.0}) h.Observe(v);
  const Histogram::Snapshot s = h.Read();
  // le=0.1 holds 0.05, 0.1 and the negative value (clamped to 0); +Inf holds all six.
  CHECK(s.cumulative == std::vector<uint64_t>{3, 4, 5, 6});
  CHECK(s.count == 6);
  CHECK(s.sum == Approx(55.65));
}

TEST_CASE("rpc counts keep a bounded label set: an unknown method is 'other'") {
  RpcCounts counts({"prs.v1.JobService/GetJob"});
  counts.Count("prs.v1.JobService/GetJob", 0);
  counts.Count("prs.v1.JobService/GetJob", 5);
  counts.Count("prs.v1.JobService/GetJob", 5);
  for (int i = 0; i < 100; ++i) counts.Count("made-up/" + std::to_string(i), 12);
  counts.Count("prs.v1.JobService/GetJob", 99);  // not a code: UNKNOWN
  const auto read = counts.Read();
  REQUIRE(read.size() == 4);
  CHECK(read[0] == std::make_tuple(std::string("prs.v1.JobService/GetJob"), 0, uint64_t{1}));
  CHECK(read[1] == std::make_tuple(std::string("prs.v1.JobService/GetJob"), 2, uint64_t{1}));
  CHECK(read[2] == std::make_tuple(std::string("prs.v1.JobService/GetJob"), 5, uint64_t{2}));
  CHECK(read[3] == std::make_tuple(std::string("other"), 12, uint64_t{100}));
}

TEST_CASE("the writer gives each family HELP and TYPE once and escapes label values") {
  PrometheusWriter w;
  w.Sample("prs_jobs", "gauge", "Jobs.", {{"state", "RUNNING"}}, 2);
  w.Sample("prs_jobs", "gauge", "Jobs.", {{"state", "FAILED"}}, 0);
  w.Sample("prs_job_info", "gauge", "Info.", {{"name", "a\"b\\c\nd"}}, 1);
  w.Sample("prs_ratio", "gauge", "A ratio.", {}, 0.25);
  Histogram h({1});
  h.Observe(0.5);
  w.Histogram("prs_x_seconds", "X.", {{"k", "v"}}, h.Read());
  const std::string& t = w.text();
  CHECK(t.find("# TYPE prs_jobs gauge") == t.rfind("# TYPE prs_jobs gauge"));
  CHECK(Contains(t,
                 "# HELP prs_jobs Jobs.\n# TYPE prs_jobs gauge\nprs_jobs{state=\"RUNNING\"} 2\n"
                 "prs_jobs{state=\"FAILED\"} 0\n"));
  CHECK(Contains(t, "prs_job_info{name=\"a\\\"b\\\\c\\nd\"} 1\n"));
  CHECK(Contains(t, "prs_ratio 0.25\n"));
  CHECK(Contains(t,
                 "# TYPE prs_x_seconds histogram\nprs_x_seconds_bucket{k=\"v\",le=\"1\"} 1\n"
                 "prs_x_seconds_bucket{k=\"v\",le=\"+Inf\"} 1\nprs_x_seconds_sum{k=\"v\"} 0.5\n"
                 "prs_x_seconds_count{k=\"v\"} 1\n"));
}

TEST_CASE("the process metrics are read from /proc") {
  PrometheusWriter w;
  WriteProcessMetrics(w);
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_start_time_seconds ", "process_open_fds ", "process_max_fds "}) {
    CHECK(Contains(w.text(), std::string("\n") + name));
  }
}

}  // namespace
}  // namespace prs::master

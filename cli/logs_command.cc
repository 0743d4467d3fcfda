// `prs logs`: a job's log tree on the master, one of its files (followed
// while the job runs), or its errors.

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/first_error_log.h"
#include "common/job_state.h"
#include "common/text.h"

namespace prs::cli {
namespace {

// Log bytes for stdout: as they are into a pipe or a file (an exact copy),
// with control bytes escaped on a terminal (a script's colours and bells,
// a path that is not UTF-8, must not drive it). Also for --errors, always.
void WriteLogBytes(const std::string& data, bool escape) {
  if (!escape) {
    std::fwrite(data.data(), 1, data.size(), stdout);
    return;
  }
  const std::string text = PrintableText(data);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

bool StdoutIsTerminal() { return ::isatty(1) != 0; }

// Moves an unfinished UTF-8 character at the end of `data` into `carry`, so
// that escaping does not cut it in two.
void HoldBackPartialCharacter(std::string& data, std::string& carry) {
  size_t lead = data.size();
  for (size_t back = 1; back <= 3 && back <= data.size(); ++back) {
    const auto c = static_cast<unsigned char>(data[data.size() - back]);
    if ((c & 0xC0) != 0x80) {
      lead = data.size() - back;
      break;
    }
  }
  const auto c = lead < data.size() ? static_cast<unsigned char>(data[lead]) : 0;
  const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (lead < data.size() && lead + need > data.size()) {
    carry = data.substr(lead);
    data.resize(lead);
  }
}

// Prints `path` from `offset`; returns the new offset, or -1 on error.
int64_t PrintLog(JobClient& client, const std::string& job_id, const std::string& path,
                 int64_t offset, bool escape = StdoutIsTerminal()) {
  std::string carry;  // the start of a character cut by the chunk's end
  for (;;) {
    auto chunk = client.ReadLog(job_id, path, offset, 1 << 20);
    if (!chunk.ok()) {
      Fail(chunk.status());
      return -1;
    }
    offset += static_cast<int64_t>(chunk->data().size());
    const bool last = chunk->data().empty() || offset >= chunk->size();
    std::string data = carry + chunk->data();
    carry.clear();
    if (escape && !last) HoldBackPartialCharacter(data, carry);
    WriteLogBytes(data, escape);
    if (last) return offset;
  }
}

// `--errors`: user/error.txt, then the first traceback.
int PrintErrors(JobClient& client, const std::string& job_id) {
  auto list = client.ListLogs(job_id);
  if (!list.ok()) return Fail(list.status());
  bool have_summary = false;
  std::string first_trace;
  for (const auto& f : list->files()) {
    if (f.path() == "user/error.txt") have_summary = true;
    if (first_trace.empty() && f.path().rfind("user/error/", 0) == 0) first_trace = f.path();
  }
  // The traceback of the job's first error, as job_result.txt names it.
  if (auto st = client.Get(job_id); st.ok()) {
    if (!st->reused_from().empty()) {
      std::fprintf(stderr,
                   "prs: job %s took its result from job %s (allow_reuse) and ran nothing; "
                   "its errors: prs logs %s --errors\n",
                   job_id.c_str(), st->reused_from().c_str(), st->reused_from().c_str());
      return 0;
    }
    first_trace = FirstErrorLog(*st, first_trace);
  }
  if (!have_summary && first_trace.empty()) {
    std::fprintf(stderr, "prs: job %s has no errors in its log tree\n", job_id.c_str());
    return 0;
  }
  if (have_summary && PrintLog(client, job_id, "user/error.txt", 0, /*escape=*/true) < 0) {
    return 1;
  }
  if (first_trace.empty()) return 0;
  std::printf("\n==> %s <==\n", first_trace.c_str());
  // The first traceback: the file's first record, up to its blank line.
  auto chunk = client.ReadLog(job_id, first_trace, 0, 64 << 10);
  if (!chunk.ok()) return Fail(chunk.status());
  const std::string& d = chunk->data();
  const size_t end = d.find("\n\n");
  WriteLogBytes(d.substr(0, end == std::string::npos ? d.size() : end + 1), /*escape=*/true);
  return 0;
}

int ListTree(JobClient& client, const std::string& job_id) {
  auto list = client.ListLogs(job_id);
  if (!list.ok()) return Fail(list.status());
  std::fprintf(stderr, "prs: log tree of %s in %s on the master\n", job_id.c_str(),
               list->log_dir().c_str());
  for (const auto& f : list->files()) {
    std::printf("%10lld  %s\n", static_cast<long long>(f.size()), f.path().c_str());
  }
  return 0;
}

// A file the job has not written yet: waits for it while the job runs. The
// end is published once the log tree is complete, so a file that is missing
// then will not come.
absl::Status AwaitFile(JobClient& client, const std::string& job_id, const std::string& path) {
  for (;;) {
    auto chunk = client.ReadLog(job_id, path, 0, 1);
    if (chunk.ok() || chunk.status().code() != absl::StatusCode::kNotFound) return absl::OkStatus();
    auto st = client.Get(job_id);
    if (!st.ok()) return st.status();
    if (IsTerminal(st->state())) {
      return absl::NotFoundError(absl::StrCat("job ", job_id, " ended without writing ", path,
                                              "; `prs logs ", job_id, "` lists its files"));
    }
    absl::SleepFor(absl::Milliseconds(500));  // polling for the file to appear
  }
}

int PrintFile(JobClient& client, const std::string& job_id, const std::string& path, bool follow) {
  if (follow) {
    if (absl::Status s = AwaitFile(client, job_id, path); !s.ok()) return Fail(s);
  }
  int64_t offset = PrintLog(client, job_id, path, 0);
  if (offset < 0) return 1;
  // The end is published once every agent shipped its last logs: one more
  // read after it sees everything.
  while (follow) {
    std::fflush(stdout);
    auto st = client.Get(job_id);
    if (!st.ok()) return Fail(st.status());
    const bool ended = IsTerminal(st->state());
    if (!ended) absl::SleepFor(absl::Milliseconds(500));  // polling the file for new bytes
    offset = PrintLog(client, job_id, path, offset);
    if (offset < 0) return 1;
    if (ended) break;
  }
  return 0;
}

}  // namespace

int LogsCommand(JobClient& client, const std::string& job_id, const std::string& path, bool follow,
                bool errors) {
  if (errors) return PrintErrors(client, job_id);
  if (path.empty()) return ListTree(client, job_id);
  return PrintFile(client, job_id, path, follow);
}

}  // namespace prs::cli

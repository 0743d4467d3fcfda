#ifndef PRS_CLI_COMMANDS_H_
#define PRS_CLI_COMMANDS_H_

// The subcommands of `prs`, one function each, and what they share: the
// exit codes, the error printer and following a job to its end. Each
// function prints its output and returns the process's exit code.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/client.h"

namespace prs::cli {

inline constexpr int kExitJobFailed = 1;
inline constexpr int kExitUsage = 2;

// Prints `s` on stderr, escaped; the exit code for it (3 when the master
// cannot be reached, 2 otherwise).
int Fail(const absl::Status& s);
// Follows a job to its end with progress on stderr; prints the summary.
// `final_out` receives the terminal status.
int Follow(JobClient& client, const std::string& job_id, v1::JobStatus* final_out = nullptr);
// How the user invoked prs: "prs" when it was found on PATH, else its path,
// so that a command prs prints can be pasted as it is. Set once by main().
std::string& PrsCommand();

// Local runs (local_commands.cc): an embedded master and agent.
// `prs run JOB_FILE`.
int RunLocalCommand(const std::string& job_file, const std::vector<std::string>& overrides,
                    const std::string& durability, std::string state_dir);
// `prs resume JOB --state-dir DIR`.
int ResumeLocalCommand(const std::string& job_id, std::string state_dir);
// `prs clean-outputs DIR`.
int CleanOutputsCommand(const std::string& dir, bool dry_run);

// Jobs on a master (job_commands.cc).
int SubmitCommand(JobClient& client, const std::string& master, const std::string& job_file,
                  const std::vector<std::string>& overrides, bool wait);
// `prs prepare JOB_FILE`: validates and packs the job as `prs submit` does and
// writes the SubmitJobRequest (binary protobuf) to stdout, for clients in
// other languages (prs.client), so that there is one implementation.
int PrepareCommand(const std::string& job_file, const std::vector<std::string>& overrides);
int StatusCommand(JobClient& client, const std::string& job_id, const std::string& output);
int WatchCommand(JobClient& client, const std::string& job_id);
int ListCommand(JobClient& client, const std::string& output);
int CancelCommand(JobClient& client, const std::string& job_id);
int NodesCommand(JobClient& client, const std::string& output);
// `prs top` (top_command.cc): jobs and nodes, redrawn every `interval_s`;
// `iterations` frames (0: until interrupted).
int TopCommand(JobClient& client, const std::string& master, double interval_s, int iterations);
int ResumeCommand(JobClient& client, const std::string& job_id, bool wait);

// `prs logs` (logs_command.cc): the tree, one file (`follow`: until the job
// ends), or the job's errors.
int LogsCommand(JobClient& client, const std::string& job_id, const std::string& path, bool follow,
                bool errors);

}  // namespace prs::cli

#endif  // PRS_CLI_COMMANDS_H_

#ifndef PRS_COMMON_MESSAGE_LIMITS_H_
#define PRS_COMMON_MESSAGE_LIMITS_H_

// What one gRPC request to the master may carry, per RPC (docs/limits.md).
// The agent and the CLI keep what they send within these bounds; the master
// refuses a request over its method's bound with RESOURCE_EXHAUSTED naming
// it, before it does anything with it.
//
// gRPC C++ has one receive limit per server, not one per method: the server's
// is kMaxRequestBytes, the largest of the bounds below, so that a larger
// message is refused by the transport before it is parsed. Each method's own
// bound is then checked on arrival (MasterServer's Authorize).
//
// No gRPC or protobuf headers here: the agent's and the master's logic use
// these numbers without them.

#include <algorithm>
#include <cstdint>

namespace prs {

// --- What a request carries --------------------------------------------------

// A job spec (the parsed job file) is a few KiB.
inline constexpr int64_t kMaxJobSpecBytes = 1 << 20;
// A source snapshot: its paths and contents together. Models and data belong
// in inputs or a shared path, not in source_directory.
inline constexpr int64_t kMaxSnapshotBytes = 64 << 20;
// The rows of one mini-batch's result.
inline constexpr int64_t kMaxResultRowsBytes = 64 << 20;
// append_row_format.header: one line.
inline constexpr int64_t kMaxHeaderBytes = 1 << 20;
// The one-line error of a result.
inline constexpr int64_t kMaxErrorChars = 4096;
// The traceback kept with an attempt (the whole one is in the node's
// user/error/ file).
inline constexpr int64_t kMaxErrorDetailBytes = 64 << 10;
// The log data of one ShipLogs (agents send 1 MiB at a time; a file they
// rewrite, whole).
inline constexpr int64_t kMaxShipLogsBytes = 16 << 20;

// --- Whole requests, per RPC -------------------------------------------------

// Room for a message's own fields and framing beside the data bounded above.
inline constexpr int64_t kEnvelopeBytes = 1 << 20;

// GetJob, ListJobs, CancelJob, ResumeJob, ListAgents, ListLogs, ReadLog,
// WatchJob, RegisterAgent, UnregisterAgent, PullTasks, GetJobBundle: ids and
// a few numbers.
inline constexpr int64_t kMaxControlRequestBytes = 64 << 10;
// Heartbeat: the leases an agent holds (about 100,000 ids).
inline constexpr int64_t kMaxHeartbeatRequestBytes = 4 << 20;
// One result with its rows, header and errors: the agent sends one alone
// when it is this large, and replaces a larger one by a failed try naming the
// bound (agent/report_bounds.h).
inline constexpr int64_t kMaxResultBytes =
    kMaxResultRowsBytes + kMaxHeaderBytes + kMaxErrorDetailBytes + 4 * kMaxErrorChars + (64 << 10);
// ReportResults: as many results as fit.
inline constexpr int64_t kMaxReportRequestBytes = kMaxResultBytes + kEnvelopeBytes;
// ShipLogs.
inline constexpr int64_t kMaxShipLogsRequestBytes = kMaxShipLogsBytes + kEnvelopeBytes;
// SubmitJob: the spec and the snapshot.
inline constexpr int64_t kMaxSubmitRequestBytes =
    kMaxJobSpecBytes + kMaxSnapshotBytes + kEnvelopeBytes;

// The master server's one receive limit: the largest request any method takes.
inline constexpr int64_t kMaxRequestBytes =
    std::max({kMaxControlRequestBytes, kMaxHeartbeatRequestBytes, kMaxReportRequestBytes,
              kMaxShipLogsRequestBytes, kMaxSubmitRequestBytes});

// What the master's gRPC transport may buffer at once, all calls together:
// room for a few requests at their bound.
inline constexpr int64_t kServerMemoryQuotaBytes = 192 << 20;

}  // namespace prs

#endif  // PRS_COMMON_MESSAGE_LIMITS_H_

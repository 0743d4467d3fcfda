#ifndef PRS_COMMON_SIGNALS_H_
#define PRS_COMMON_SIGNALS_H_

namespace prs {

// For daemons' main(): blocks SIGINT and SIGTERM in this thread and every
// thread started after it, and ignores SIGPIPE (a dead peer surfaces as an
// error). Call before starting any thread.
void BlockTerminationSignals();

// Waits for SIGINT or SIGTERM (blocked by BlockTerminationSignals) and
// returns its number.
int WaitForTerminationSignal();

// For prs-master: blocks SIGHUP too (call with BlockTerminationSignals, before
// any thread starts), and waits for SIGINT, SIGTERM or SIGHUP.
void BlockHangupSignal();
int WaitForTerminationOrHangup();

}  // namespace prs

#endif  // PRS_COMMON_SIGNALS_H_

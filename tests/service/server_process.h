// Test support: runs the real stepwise-server binary (or the stepwise CLI) as
// a child process, the way an operator would, and learns its ports from the
// line it prints once SERVING. No sleeps: every wait is a poll() on a pipe or
// a pidfd with a deadline.
#ifndef STEPWISE_TESTS_SERVICE_SERVER_PROCESS_H_
#define STEPWISE_TESTS_SERVICE_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::testing {

class ServerProcess {
 public:
  // Starts `binary args...` and waits (up to `timeout`) for the
  // "stepwise-server listening on HOST:PORT" line. If the process exits
  // first, the error holds its exit code and stderr.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(60));

  ~ServerProcess();  // SIGKILL and reap if still running

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;
  pid_t pid() const { return pid_; }

  void Signal(int signal_number);
  // The exit status as from waitpid, or an error on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::Seconds(60));
  // Everything the process wrote to stderr so far.
  std::string Stderr() const;

 private:
  ServerProcess() = default;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  int port_ = 0;
  int metrics_port_ = -1;
  bool reaped_ = false;
};

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs a command to completion (bounded by `timeout`; killed after it).
CommandResult RunCommand(const std::string& binary,
                         const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Seconds(120));

// A fresh, empty folder under testing::TempDir().
std::string NewTempDir(const std::string& name);

// All audit segment files of `dir` concatenated (*.jsonl, by name).
std::string ReadAuditSegments(const std::string& dir);

// A request on the test bundle's three-item "mood" scale
// (tests/service/testdata/bundle): subject "patient-<request_id>", step 1
// for 2 weeks, administered 2026-11-20 09:00, as_of 12:00 the same day.
v1::EvaluateRequest MoodRequest(const std::string& request_id, int item1,
                                int item2, int item3);

}  // namespace stepwise::testing

#endif  // STEPWISE_TESTS_SERVICE_SERVER_PROCESS_H_

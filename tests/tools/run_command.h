// Test support: run a command (no shell) and capture its exit code and
// combined output. Bounded: the child is killed if it outlives the timeout.
#ifndef STEPWISE_TESTS_TOOLS_RUN_COMMAND_H_
#define STEPWISE_TESTS_TOOLS_RUN_COMMAND_H_

#include <string>
#include <vector>

namespace stepwise::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed or not started
  std::string output;  // stdout and stderr, interleaved
};

CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_seconds = 60);

}  // namespace stepwise::testing

#endif  // STEPWISE_TESTS_TOOLS_RUN_COMMAND_H_

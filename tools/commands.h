// The `stepwise` command line is one CLI11 app; each *_commands.cc file adds
// its verbs through a registrar, so the verbs of different layers (engine,
// audit log, service) live beside the code they drive.
//
// Exit codes (architecture §6): 0 ok, 1 a check failed (lint error, test
// failure, broken chain, bad request), 2 usage error.
#ifndef STEPWISE_TOOLS_COMMANDS_H_
#define STEPWISE_TOOLS_COMMANDS_H_

#include <deque>
#include <utility>

#include "CLI/CLI.hpp"

namespace stepwise::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;
inline constexpr int kExitUsage = 2;

// A registrar adds subcommands to `app`; their callbacks store the process
// exit code in `*exit_code`.
using Registrar = void (*)(CLI::App& app, int* exit_code);

// Called from a static initializer in each *_commands.cc. Returns true.
bool AddRegistrar(Registrar registrar);

// Storage for a verb's option values. CLI11 binds each option to a variable
// that must outlive parsing, while a registrar returns before parsing starts.
// The values live until the process exits and are then destroyed, so leak
// checkers (LSan) see no lost allocation. Not thread-safe: registrars run on
// the main thread before parsing.
template <typename T, typename... Args>
T* Keep(Args&&... args) {
  static std::deque<T> values;  // deque: emplace_back never moves elements
  return &values.emplace_back(std::forward<Args>(args)...);
}

}  // namespace stepwise::tools

#define STEPWISE_REGISTER_COMMANDS(fn)         \
  static const bool stepwise_registered_##fn = \
      ::stepwise::tools::AddRegistrar(&fn)

#endif  // STEPWISE_TOOLS_COMMANDS_H_

// Limits on what a bundle and a request may be, in one place. Each default is
// documented; the CLI and the server pass them through unchanged unless
// configured otherwise.
#ifndef STEPWISE_ENGINE_OPTIONS_H_
#define STEPWISE_ENGINE_OPTIONS_H_

#include <cstddef>

#include "engine/expr/program.h"

namespace stepwise::engine {

struct EngineOptions {
  // Per-expression limits (length, depth, list size). Default: expr::Limits.
  expr::Limits expr_limits;
  // Most rules in one ruleset. Default: 10000.
  size_t max_rules = 10000;
  // Most instruments in one bundle. Default: 64.
  size_t max_instruments = 64;
  // Largest file the loader reads, in bytes. Default: 4 MiB.
  size_t max_file_bytes = 4u << 20;
  // Most test cases in one bundle. Default: 100000.
  size_t max_test_cases = 100000;
  // Most administrations in one request. Default: 512.
  size_t max_assessments = 512;
  // Most flags in one request. Default: 64.
  size_t max_flags = 64;
};

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_OPTIONS_H_

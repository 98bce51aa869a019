// Small local status helpers: Debian 12's Abseil (20220623) has no
// ABSL_RETURN_IF_ERROR / ASSIGN_OR_RETURN.
#ifndef STEPWISE_ENGINE_STATUS_MACROS_H_
#define STEPWISE_ENGINE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STEPWISE_RETURN_IF_ERROR(expr)              \
  do {                                              \
    ::absl::Status _stepwise_status = (expr);       \
    if (!_stepwise_status.ok()) return _stepwise_status; \
  } while (0)

#define STEPWISE_CONCAT_INNER_(a, b) a##b
#define STEPWISE_CONCAT_(a, b) STEPWISE_CONCAT_INNER_(a, b)

#define STEPWISE_ASSIGN_OR_RETURN(lhs, rexpr) \
  STEPWISE_ASSIGN_OR_RETURN_IMPL_(STEPWISE_CONCAT_(_stepwise_or_, __LINE__), lhs, rexpr)

#define STEPWISE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(tmp).value()

#endif  // STEPWISE_ENGINE_STATUS_MACROS_H_

// Internal: the hot core of evaluation. Every rule of a compiled bundle over
// one fact table, combined by the hit policy into an action and a step. No
// strings, no protobuf, no allocation for bundles of up to 32 matched or
// undecided rules. Evaluate() (evaluate.cc) wraps it and explains the
// result; the benchmarks call it directly over pre-derived facts.
//
// The rules' conditions run as one expr::Batch (PrepareDecide, at load);
// DecideOneByOne is the same decision with each condition evaluated on its
// own by Program::Evaluate, the reference the batch is tested against.
#ifndef STEPWISE_ENGINE_DECIDE_H_
#define STEPWISE_ENGINE_DECIDE_H_

#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "engine/compiled_bundle.h"
#include "engine/expr/value.h"

namespace stepwise::engine {

struct CoreDecision {
  v1::Action action = v1::ACTION_UNSPECIFIED;
  int step = 0;
  // Why the winning STEP_UP / STEP_DOWN became STAY (0: it did not).
  enum class Cap { kNone, kStepUp, kStepDown } cap = Cap::kNone;
  // Rule indices, in rule order.
  absl::InlinedVector<uint32_t, 32> matched;
  absl::InlinedVector<uint32_t, 32> undecided;
};

// Most to least severe: URGENT_SAFETY > REFER > STEP_UP > STAY > STEP_DOWN.
int Severity(v1::Action action);

// The step a matched rule argues for (0 for STAY / URGENT_SAFETY).
int RuleTarget(const CompiledRule& rule, int current);

// Builds bundle->decide_plan; call once the rules are compiled.
void PrepareDecide(CompiledBundle* bundle);

// Evaluates every rule over `slots` and combines the matched actions
// (default-ruleset.md "Actions and how they combine").
void Decide(const CompiledBundle& bundle, const expr::Value* slots,
            int current_step, CoreDecision* out);

// Decide, one Program::Evaluate per rule.
void DecideOneByOne(const CompiledBundle& bundle, const expr::Value* slots,
                    int current_step, CoreDecision* out);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_DECIDE_H_

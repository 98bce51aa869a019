// The engine's public surface: load a rule bundle, evaluate one request,
// run the bundle's own tests. No gRPC and no I/O beyond reading a bundle.
//
// A Bundle is compiled once, immutable, and shared by pointer: any number of
// threads may evaluate against it at once; a reload builds a new one beside
// the old and swaps the pointer.
#ifndef STEPWISE_ENGINE_ENGINE_H_
#define STEPWISE_ENGINE_ENGINE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/diagnostic.h"
#include "engine/options.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {

// One thing wrong with a request: the field path
// ("assessments[0].items.item4") and a plain-words reason
// ("4 is outside 0..3 for phq9").
struct FieldViolation {
  std::string field;
  std::string description;
};

struct EvaluateOptions {
  // Fill Decision.trace with every rule's outcome and explanation.
  bool explain = false;
};

struct EvaluationResult {
  // Non-empty: the request is bad input; nothing was evaluated and
  // `decision` is unset.
  std::vector<FieldViolation> violations;
  // Everything but decision_id, evaluated_at and audit_seq, which belong to
  // whoever records the decision.
  v1::Decision decision;

  bool ok() const { return violations.empty(); }
};

// Validates `request`, derives its facts (as of request.as_of, or
// `received_at` when the request has none) and evaluates every rule.
EvaluationResult Evaluate(const Bundle& bundle,
                          const v1::EvaluateRequest& request,
                          absl::Time received_at,
                          const EvaluateOptions& options = {});

// Evaluate, into a Decision the caller owns: returns the violations (when
// there are any, `decision` is left untouched). `decision` must be empty. A
// Decision created on a google::protobuf::Arena takes its sub-messages from
// the arena, with the same bytes; with protobuf 3.21 the strings' buffers
// still come from the heap. On one thread in a loop that saves only about
// 2 % (bench/engine_bench.cc, BM_DefaultBundle_EvaluateOnArena); in the
// server, where a Decision is built on one thread and freed on another
// among many, answering into the call's arena saves far more
// (docs/service.md, "Evaluate, step by step").
std::vector<FieldViolation> EvaluateInto(const Bundle& bundle,
                                         const v1::EvaluateRequest& request,
                                         absl::Time received_at,
                                         const EvaluateOptions& options,
                                         v1::Decision* decision);

// The outcome alone, without explanations or a Decision message: what
// `stepwise replay` compares, at a fraction of Evaluate's cost. Same
// validation, facts and hit policy as Evaluate.
struct Outcome {
  std::vector<FieldViolation> violations;  // non-empty: bad input
  v1::Action action = v1::ACTION_UNSPECIFIED;
  int recommended_step = 0;
  // Indices into bundle.rules() of the matched rules, in rule order.
  absl::InlinedVector<uint32_t, 16> matched;
  // Targets of the matched REFER rules, sorted, each once.
  std::vector<std::string> refer_to;

  bool ok() const { return violations.empty(); }
};
Outcome EvaluateOutcome(const Bundle& bundle,
                        const v1::EvaluateRequest& request,
                        absl::Time received_at);

// Validation alone (the first step of Evaluate).
std::vector<FieldViolation> ValidateRequest(const Bundle& bundle,
                                            const v1::EvaluateRequest& request,
                                            absl::Time received_at);

// The result of evaluating one free-standing expression over a request's
// facts (`stepwise expr`, for rule authors).
struct ExpressionResult {
  // Parse and type errors: 1-based positions inside the expression text.
  std::vector<expr::Issue> issues;
  // Bad request (when a request was given).
  std::vector<FieldViolation> violations;
  // When both are empty: the type and either a value rendered as JSON, or
  // why there is none (an absent fact, an evaluation error).
  std::string type;
  std::string json_value;
  std::string error;
};

// Compiles `text` against the bundle's facts and defines and evaluates it
// over `request`'s facts; with no request, every fact is absent.
ExpressionResult EvaluateExpression(const Bundle& bundle, std::string_view text,
                                    const v1::EvaluateRequest* request,
                                    absl::Time received_at);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_ENGINE_H_

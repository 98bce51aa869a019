// Evaluation: validate the request, derive its facts once, evaluate every
// rule, combine the matched actions (default-ruleset.md "Actions and how they
// combine") and explain the rules that are reported.
#include <algorithm>
#include <cmath>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/compiled_bundle.h"
#include "engine/decide.h"
#include "engine/engine.h"
#include "engine/facts.h"

namespace stepwise::engine {
namespace {

using expr::Value;

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

// The explanation written straight into the message's string, sized once.
void ExplainInto(const expr::Program& program, const Value* slots,
                 std::string* out) {
  out->reserve(2 * program.source().size() + 32);
  program.ExplainText(slots, out);
}

void FillMatched(const CompiledRule& rule, int current, const Value* slots,
                 v1::MatchedRule* out) {
  out->set_rule_id(rule.id);
  out->set_title(rule.title);
  out->set_action(rule.action);
  out->set_rationale(rule.rationale);
  out->set_follow_up(rule.follow_up);
  out->set_source(rule.source);
  const int target = RuleTarget(rule, current);
  if (target != 0) out->set_target_step(target);
  if (!rule.refer_to.empty()) out->set_refer_to(rule.refer_to);
  ExplainInto(*rule.when, slots, out->mutable_explanation());
}

}  // namespace

std::vector<FieldViolation> ValidateRequest(const Bundle& bundle,
                                            const v1::EvaluateRequest& request,
                                            absl::Time received_at) {
  std::vector<FieldViolation> violations;
  std::vector<std::string> warnings;
  FactTable facts(bundle.compiled());
  DeriveFacts(bundle.compiled(), request, ResolveAsOf(request, received_at),
              &facts, &violations, &warnings);
  return violations;
}

Outcome EvaluateOutcome(const Bundle& bundle,
                        const v1::EvaluateRequest& request,
                        absl::Time received_at) {
  const CompiledBundle& b = bundle.compiled();
  Outcome outcome;
  std::vector<std::string> warnings;
  FactTable facts(b);
  if (!DeriveFacts(b, request, ResolveAsOf(request, received_at), &facts,
                   &outcome.violations, &warnings)) {
    return outcome;
  }
  CoreDecision core;
  Decide(b, facts.slots(), request.current_step(), &core);
  outcome.action = core.action;
  outcome.recommended_step = core.step;
  outcome.matched.assign(core.matched.begin(), core.matched.end());
  for (uint32_t i : core.matched) {
    if (b.rules[i].action == v1::REFER)
      outcome.refer_to.push_back(b.rules[i].refer_to);
  }
  std::sort(outcome.refer_to.begin(), outcome.refer_to.end());
  outcome.refer_to.erase(
      std::unique(outcome.refer_to.begin(), outcome.refer_to.end()),
      outcome.refer_to.end());
  return outcome;
}

EvaluationResult Evaluate(const Bundle& bundle,
                          const v1::EvaluateRequest& request,
                          absl::Time received_at,
                          const EvaluateOptions& options) {
  EvaluationResult result;
  result.violations =
      EvaluateInto(bundle, request, received_at, options, &result.decision);
  return result;
}

std::vector<FieldViolation> EvaluateInto(const Bundle& bundle,
                                         const v1::EvaluateRequest& request,
                                         absl::Time received_at,
                                         const EvaluateOptions& options,
                                         v1::Decision* decision) {
  const CompiledBundle& b = bundle.compiled();
  std::vector<FieldViolation> violations;
  std::vector<std::string> warnings;
  const absl::Time as_of = ResolveAsOf(request, received_at);
  FactTable facts(b);
  if (!DeriveFacts(b, request, as_of, &facts, &violations, &warnings)) {
    return violations;
  }
  const Value* slots = facts.slots();
  const int current = request.current_step();

  CoreDecision core;
  Decide(b, slots, current, &core);
  const auto& matched = core.matched;
  const auto& undecided = core.undecided;
  v1::Decision& d = *decision;
  if (matched.empty()) {
    v1::MatchedRule* def = d.mutable_default_rule();
    def->set_rule_id("default");
    def->set_title("No rule matched");
    def->set_action(core.action);
    def->set_rationale(b.default_outcome.rationale);
    def->set_follow_up(b.default_outcome.follow_up);
    def->set_source(b.default_outcome.source);
    def->set_explanation("no rule matched");
  }
  if (core.cap == CoreDecision::Cap::kStepUp) {
    warnings.push_back(
        absl::StrCat("STEP_UP capped: the patient is at step ", current,
                     current == b.max_step ? ", the highest step"
                                           : ", at or above the rule's target",
                     "; recommending STAY"));
  } else if (core.cap == CoreDecision::Cap::kStepDown) {
    warnings.push_back(absl::StrCat(
        "STEP_DOWN capped: the patient is at step ", current,
        current == 1 ? ", the lowest step" : ", at or below the rule's target",
        "; recommending STAY"));
  }
  d.set_action(core.action);
  d.set_recommended_step(core.step);

  std::vector<std::string> refer_to;
  for (uint32_t i : matched) {
    const CompiledRule& rule = b.rules[i];
    if (rule.action == v1::REFER) refer_to.push_back(rule.refer_to);
    FillMatched(rule, current, slots, d.add_matched_rules());
  }
  std::sort(refer_to.begin(), refer_to.end());
  refer_to.erase(std::unique(refer_to.begin(), refer_to.end()), refer_to.end());
  for (std::string& target : refer_to) d.add_refer_to(std::move(target));

  expr::ExplainedCauses causes;
  for (uint32_t i : undecided) {
    const CompiledRule& rule = b.rules[i];
    v1::UnevaluatedRule* u = d.add_unevaluated_rules();
    u->set_rule_id(rule.id);
    u->set_title(rule.title);
    std::string* text = u->mutable_explanation();
    text->reserve(2 * rule.when->source().size() + 32);
    rule.when->ExplainParts(slots, text, &causes);
    for (const std::string* fact : causes.missing_facts)
      u->add_missing_facts(*fact);
    for (std::string_view error : causes.errors)
      u->add_missing_facts(error.data(), error.size());
  }

  for (std::string& warning : warnings) d.add_warnings(std::move(warning));
  *d.mutable_ruleset() = bundle.ref();
  SetTimestamp(as_of, d.mutable_as_of());

  if (options.explain) {
    size_t next_matched = 0;
    size_t next_undecided = 0;
    for (uint32_t i = 0; i < b.rules.size(); ++i) {
      v1::RuleTrace* trace = d.add_trace();
      trace->set_rule_id(b.rules[i].id);
      if (next_matched < matched.size() && matched[next_matched] == i) {
        trace->set_outcome(v1::RuleTrace::MATCHED);
        ++next_matched;
      } else if (next_undecided < undecided.size() &&
                 undecided[next_undecided] == i) {
        trace->set_outcome(v1::RuleTrace::UNDECIDED);
        ++next_undecided;
      } else {
        trace->set_outcome(v1::RuleTrace::NOT_MATCHED);
      }
      ExplainInto(*b.rules[i].when, slots, trace->mutable_explanation());
    }
  }
  return violations;
}

}  // namespace stepwise::engine

namespace stepwise::engine {
namespace {

std::string TypeName(const expr::Type& type) {
  switch (type.kind) {
    case expr::Kind::kBool:
      return "bool";
    case expr::Kind::kInt:
      return "int";
    case expr::Kind::kDouble:
      return "double";
    case expr::Kind::kString:
      return "string";
    case expr::Kind::kList:
      return "list";
  }
  return "unknown";
}

// JSON for a decided value: numbers and bools as themselves (non-finite
// doubles as the strings protobuf's JSON mapping uses), strings quoted.
std::string JsonValue(const Value& v) {
  switch (v.tag) {
    case expr::Tag::kBool:
      return v.b ? "true" : "false";
    case expr::Tag::kInt:
      return absl::StrCat(v.i);
    case expr::Tag::kDouble:
      if (std::isnan(v.d)) return "\"NaN\"";
      if (std::isinf(v.d)) return v.d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
      return expr::FormatValue(v);
    case expr::Tag::kString:
      return expr::FormatValue(v);
    case expr::Tag::kList: {
      std::string out = "[";
      for (uint32_t i = 0; i < v.aux; ++i) {
        if (i > 0) out += ", ";
        out += JsonValue(v.elems[i]);
      }
      return out + "]";
    }
    default:
      return "null";
  }
}

}  // namespace

ExpressionResult EvaluateExpression(const Bundle& bundle, std::string_view text,
                                    const v1::EvaluateRequest* request,
                                    absl::Time received_at) {
  const CompiledBundle& b = bundle.compiled();
  ExpressionResult result;
  expr::CompileOptions options;
  options.defines = &b.defines;
  options.limits = b.options.expr_limits;
  absl::StatusOr<expr::CompileResult> compiled =
      expr::Compile(text, b.decls, options);
  if (!compiled.ok()) {
    result.issues.push_back(
        expr::Issue{1, 1, std::string(compiled.status().message())});
    return result;
  }
  if (!compiled->issues.empty()) {
    result.issues = std::move(compiled->issues);
    return result;
  }
  FactTable facts(b);
  if (request != nullptr) {
    std::vector<std::string> warnings;
    if (!DeriveFacts(b, *request, ResolveAsOf(*request, received_at), &facts,
                     &result.violations, &warnings)) {
      return result;
    }
  } else {
    facts.Reset(b);
  }
  result.type = TypeName(compiled->program->type());
  expr::Explanation explanation;
  const Value v = compiled->program->Explain(facts.slots(), &explanation);
  if (v.tag == expr::Tag::kAbsent) {
    result.error =
        explanation.missing_facts.empty()
            ? "no value: a fact it needs is absent"
            : absl::StrCat("no value: absent ",
                           absl::StrJoin(explanation.missing_facts, ", "));
  } else if (v.tag == expr::Tag::kError) {
    result.error = explanation.errors.empty()
                       ? std::string(expr::ErrorCodeName(
                             static_cast<expr::ErrorCode>(v.aux)))
                       : absl::StrJoin(explanation.errors, ", ");
  } else {
    result.json_value = JsonValue(v);
  }
  return result;
}

}  // namespace stepwise::engine

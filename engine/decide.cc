#include "engine/decide.h"

#include <algorithm>

namespace stepwise::engine {

int Severity(v1::Action action) {
  switch (action) {
    case v1::URGENT_SAFETY: return 5;
    case v1::REFER: return 4;
    case v1::STEP_UP: return 3;
    case v1::STAY: return 2;
    case v1::STEP_DOWN: return 1;
    default: return 0;
  }
}

int RuleTarget(const CompiledRule& rule, int current) {
  if (rule.to_step.current) return current;
  if (rule.to_step.step != 0) return rule.to_step.step;
  switch (rule.action) {
    case v1::STEP_UP: return current + 1;
    case v1::STEP_DOWN: return current - 1;
    case v1::REFER: return current;
    default: return 0;
  }
}

void Decide(const CompiledBundle& bundle, const expr::Value* slots, int current,
            CoreDecision* out) {
  out->matched.clear();
  out->undecided.clear();
  out->cap = CoreDecision::Cap::kNone;
  const std::vector<CompiledRule>& rules = bundle.rules;
  v1::Action winner = v1::ACTION_UNSPECIFIED;
  for (uint32_t i = 0; i < rules.size(); ++i) {
    const expr::Value v = rules[i].when->Evaluate(slots);
    if (v.is_true()) {
      out->matched.push_back(i);
      if (Severity(rules[i].action) > Severity(winner)) winner = rules[i].action;
    } else if (v.undecided()) {
      out->undecided.push_back(i);
    }
  }

  int step = current;
  if (out->matched.empty()) {
    winner = bundle.default_outcome.action;
  } else if (winner == v1::REFER || winner == v1::STEP_UP || winner == v1::STEP_DOWN) {
    // Several rules of the winning action: the highest target (for STEP_DOWN,
    // the smallest step down).
    int target = 0;
    for (uint32_t i : out->matched) {
      if (rules[i].action == winner) target = std::max(target, RuleTarget(rules[i], current));
    }
    if (winner == v1::REFER) {
      step = target;
    } else if (winner == v1::STEP_UP) {
      target = std::min(target, bundle.max_step);
      if (target <= current) {
        out->cap = CoreDecision::Cap::kStepUp;
        winner = v1::STAY;
      } else {
        step = target;
      }
    } else {
      target = std::max(target, 1);
      if (target >= current) {
        out->cap = CoreDecision::Cap::kStepDown;
        winner = v1::STAY;
      } else {
        step = target;
      }
    }
  }
  out->action = winner;
  out->step = step;
}

}  // namespace stepwise::engine

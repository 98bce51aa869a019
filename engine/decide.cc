#include "engine/decide.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/numeric/bits.h"

namespace stepwise::engine {

int Severity(v1::Action action) {
  switch (action) {
    case v1::URGENT_SAFETY:
      return 5;
    case v1::REFER:
      return 4;
    case v1::STEP_UP:
      return 3;
    case v1::STAY:
      return 2;
    case v1::STEP_DOWN:
      return 1;
    default:
      return 0;
  }
}

int RuleTarget(const CompiledRule& rule, int current) {
  if (rule.to_step.current) return current;
  if (rule.to_step.step != 0) return rule.to_step.step;
  switch (rule.action) {
    case v1::STEP_UP:
      return current + 1;
    case v1::STEP_DOWN:
      return current - 1;
    case v1::REFER:
      return current;
    default:
      return 0;
  }
}

namespace {

constexpr v1::Action kActionBySeverity[6] = {
    v1::ACTION_UNSPECIFIED, v1::STEP_DOWN, v1::STAY, v1::STEP_UP, v1::REFER,
    v1::URGENT_SAFETY};

// The hit policy over the matched rules (in rule order) and the most severe
// matched action.
void Combine(const CompiledBundle& bundle, int current, v1::Action winner,
             CoreDecision* out) {
  const std::vector<CompiledRule>& rules = bundle.rules;
  int step = current;
  if (out->matched.empty()) {
    winner = bundle.default_outcome.action;
  } else if (winner == v1::REFER || winner == v1::STEP_UP ||
             winner == v1::STEP_DOWN) {
    // Several rules of the winning action: the highest target (for STEP_DOWN,
    // the smallest step down).
    int target = 0;
    for (uint32_t i : out->matched) {
      if (rules[i].action == winner) {
        target = std::max(target, RuleTarget(rules[i], current));
      }
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

}  // namespace

void RuleList::Grow(size_t n) {
  const size_t capacity = std::max<size_t>(n, 2 * size_t{capacity_});
  auto heap = std::make_unique<uint32_t[]>(capacity);
  std::copy(data_, data_ + size_, heap.get());
  heap_ = std::move(heap);
  data_ = heap_.get();
  capacity_ = static_cast<uint32_t>(capacity);
}

void PrepareDecide(CompiledBundle* bundle) {
  std::vector<const expr::Program*> programs;
  programs.reserve(bundle->rules.size());
  for (const CompiledRule& rule : bundle->rules) {
    programs.push_back(rule.when.get());
  }
  DecidePlan& plan = bundle->decide_plan;
  plan.batch = std::make_unique<expr::Batch>(programs);
  plan.severity.clear();
  for (const CompiledRule& rule : bundle->rules) {
    plan.severity.push_back(static_cast<uint8_t>(Severity(rule.action)));
  }
}

void Decide(const CompiledBundle& bundle, const expr::Value* slots, int current,
            CoreDecision* out) {
  const DecidePlan& plan = bundle.decide_plan;
  if (plan.batch == nullptr) {
    DecideOneByOne(bundle, slots, current, out);
    return;
  }
  out->matched.clear();
  out->undecided.clear();
  out->cap = CoreDecision::Cap::kNone;
  const expr::Batch& batch = *plan.batch;
  const uint8_t* severity = plan.severity.data();
  uint8_t most_severe = 0;
  for (size_t c = 0; c < batch.chunk_count(); ++c) {
    uint64_t matched;
    uint64_t undecided;
    batch.EvaluateChunk(c, slots, &matched, &undecided);
    const uint32_t first = batch.chunk_first(c);
    // Room for every rule of the chunk: counting the bits first would cost
    // more than the check it saves.
    uint32_t* const m_begin = out->matched.Reserve(batch.chunk_size(c));
    uint32_t* m = m_begin;
    for (; matched != 0; matched &= matched - 1) {
      const uint32_t i = first + absl::countr_zero(matched);
      most_severe = std::max(most_severe, severity[i]);
      *m++ = i;
    }
    out->matched.Commit(m - m_begin);
    uint32_t* const u_begin = out->undecided.Reserve(batch.chunk_size(c));
    uint32_t* u = u_begin;
    for (; undecided != 0; undecided &= undecided - 1) {
      *u++ = first + absl::countr_zero(undecided);
    }
    out->undecided.Commit(u - u_begin);
  }
  Combine(bundle, current, kActionBySeverity[most_severe], out);
}

void DecideOneByOne(const CompiledBundle& bundle, const expr::Value* slots,
                    int current, CoreDecision* out) {
  out->matched.clear();
  out->undecided.clear();
  out->cap = CoreDecision::Cap::kNone;
  const std::vector<CompiledRule>& rules = bundle.rules;
  v1::Action winner = v1::ACTION_UNSPECIFIED;
  for (uint32_t i = 0; i < rules.size(); ++i) {
    const expr::Value v = rules[i].when->Evaluate(slots);
    if (v.is_true()) {
      out->matched.push_back(i);
      if (Severity(rules[i].action) > Severity(winner)) {
        winner = rules[i].action;
      }
    } else if (v.undecided()) {
      out->undecided.push_back(i);
    }
  }
  Combine(bundle, current, winner, out);
}

}  // namespace stepwise::engine

// Internal: the hot core of evaluation. Every rule of a compiled bundle over
// one fact table, combined by the hit policy into an action and a step. No
// strings, no protobuf, no allocation for bundles of up to 64 rules. Evaluate()
// (evaluate.cc) wraps it and explains the result; the benchmarks call it
// directly over pre-derived facts.
//
// The rules' conditions run as one expr::Batch (PrepareDecide, at load);
// DecideOneByOne is the same decision with each condition evaluated on its
// own by Program::Evaluate, the reference the batch is tested against.
#ifndef STEPWISE_ENGINE_DECIDE_H_
#define STEPWISE_ENGINE_DECIDE_H_

#include <cstdint>
#include <memory>

#include "engine/compiled_bundle.h"
#include "engine/expr/value.h"

namespace stepwise::engine {

// Rule indices, in rule order: inline up to 64, on the heap beyond. Decide
// reserves room for every rule (and some slack) at once, so the hot loop
// writes eight entries at a time without a capacity check.
class RuleList {
 public:
  RuleList() = default;
  RuleList(const RuleList&) = delete;
  RuleList& operator=(const RuleList&) = delete;

  void clear() { size_ = 0; }
  // Empties the list and returns room for `n`: write them through the
  // pointer, then Commit how many are real.
  uint32_t* Reset(size_t n) {
    size_ = 0;
    return Reserve(n);
  }
  // Room for `n` more; write them through the pointer, then Commit.
  uint32_t* Reserve(size_t n) {
    if (size_ + n > capacity_) Grow(size_ + n);
    return data_ + size_;
  }
  void Commit(size_t n) { size_ += static_cast<uint32_t>(n); }
  // The list now ends at `end` (within the room reserved).
  void CommitTo(const uint32_t* end) {
    size_ = static_cast<uint32_t>(end - data_);
  }
  void push_back(uint32_t i) {
    *Reserve(1) = i;
    ++size_;
  }

  const uint32_t* begin() const { return data_; }
  const uint32_t* end() const { return data_ + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint32_t operator[](size_t k) const { return data_[k]; }

 private:
  void Grow(size_t n);

  uint32_t inline_[64];
  uint32_t* data_ = inline_;
  uint32_t size_ = 0;
  uint32_t capacity_ = 64;
  std::unique_ptr<uint32_t[]> heap_;
};

struct CoreDecision {
  v1::Action action = v1::ACTION_UNSPECIFIED;
  int step = 0;
  // Why the winning STEP_UP / STEP_DOWN became STAY (0: it did not).
  enum class Cap { kNone, kStepUp, kStepDown } cap = Cap::kNone;
  RuleList matched;
  RuleList undecided;
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

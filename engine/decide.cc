#include "engine/decide.h"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"

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
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Combine(const CompiledBundle& bundle,
                                                 int current, v1::Action winner,
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

// For each byte: the positions of its set bits, low first, then zeros.
struct ByteIndices {
  uint32_t index[256][8];
  uint8_t count[256];
};
constexpr ByteIndices MakeByteIndices() {
  ByteIndices t{};
  for (int b = 0; b < 256; ++b) {
    int n = 0;
    for (int i = 0; i < 8; ++i) {
      if ((b >> i) & 1) t.index[b][n++] = static_cast<uint32_t>(i);
    }
    t.count[b] = static_cast<uint8_t>(n);
  }
  return t;
}
constexpr ByteIndices kByteIndices = MakeByteIndices();

// Writes first + i for every bit i set in `byte`, in order, and returns the
// end: eight entries are written and the pointer moves by how many are
// real, so `out` needs room for eight.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t* AppendIndices(uint32_t* out,
                                                            uint32_t byte,
                                                            uint32_t first) {
  const uint32_t* index = kByteIndices.index[byte];
#ifdef __SSE2__
  const __m128i base = _mm_set1_epi32(static_cast<int>(first));
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(index));
  const __m128i hi =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(index + 4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_add_epi32(lo, base));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4),
                   _mm_add_epi32(hi, base));
#else
  for (int j = 0; j < 8; ++j) out[j] = first + index[j];
#endif
  return out + kByteIndices.count[byte];
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

namespace {

// DecidePlan's step class of an action.
constexpr uint32_t kNoStepClass = 3;
constexpr uint32_t StepClass(v1::Action action) {
  switch (action) {
    case v1::REFER:
      return 0;
    case v1::STEP_UP:
      return 1;
    case v1::STEP_DOWN:
      return 2;
    default:
      return kNoStepClass;
  }
}

// The step class of the most severe matched action, by its severity.
constexpr auto kStepClassBySeverity = [] {
  std::array<uint32_t, 6> classes{};
  for (size_t s = 0; s < classes.size(); ++s) {
    classes[s] = StepClass(kActionBySeverity[s]);
  }
  return classes;
}();

void BuildStepTables(const CompiledBundle& bundle, DecidePlan* plan) {
  plan->step_tables = false;
  plan->fixed_step.clear();
  plan->relative_move.clear();
  const expr::Batch& batch = *plan->batch;
  if (batch.chunk_count() != 1) return;
  const uint32_t bytes = (batch.chunk_size(0) + 7) / 8;
  const size_t size = size_t{kNoStepClass + 1} * bytes * 256;
  std::vector<uint8_t> fixed(size, 0);
  std::vector<uint8_t> relative(size, 0);
  for (uint32_t i = 0; i < bundle.rules.size(); ++i) {
    const CompiledRule& rule = bundle.rules[i];
    const uint32_t step_class = StepClass(rule.action);
    if (step_class == kNoStepClass) continue;
    // What RuleTarget says the rule argues for, at two current steps: the
    // same step at both is a fixed to_step, else a move relative to the
    // current step.
    constexpr int kAt = 100;
    const int at = RuleTarget(rule, kAt);
    const bool is_fixed = at == RuleTarget(rule, kAt + 1);
    const int fixed_step = is_fixed ? at : 0;
    const int move = is_fixed ? 0 : at - kAt + 2;  // + 2; 0: none
    // What the tables cannot hold leaves the bundle to Combine's loop.
    if (fixed_step < 0 || fixed_step > 255 || move < 0 || move > 3) return;
    const uint32_t bit = i % 8;
    uint8_t* f = &fixed[(step_class * bytes + i / 8) * 256];
    uint8_t* r = &relative[(step_class * bytes + i / 8) * 256];
    for (uint32_t b = 0; b < 256; ++b) {
      if (((b >> bit) & 1) == 0) continue;
      f[b] = static_cast<uint8_t>(std::max<int>(f[b], fixed_step));
      r[b] = static_cast<uint8_t>(std::max<int>(r[b], move));
    }
  }
  plan->step_table_bytes = bytes;
  plan->fixed_step = std::move(fixed);
  plan->relative_move = std::move(relative);
  plan->step_tables = true;
}

}  // namespace

void PrepareDecide(CompiledBundle* bundle) {
  std::vector<const expr::Program*> programs;
  programs.reserve(bundle->rules.size());
  for (const CompiledRule& rule : bundle->rules) {
    programs.push_back(rule.when.get());
  }
  DecidePlan& plan = bundle->decide_plan;
  plan.severity.clear();
  for (const CompiledRule& rule : bundle->rules) {
    plan.severity.push_back(static_cast<uint8_t>(Severity(rule.action)));
  }
  // Labelled by severity, the batch gives the most severe matched action.
  plan.batch = std::make_unique<expr::Batch>(programs, plan.severity);
  BuildStepTables(*bundle, &plan);
}

namespace {

// Evaluates `chunk` and appends its matched and undecided rules; returns the
// highest severity among its matched rules. A byte of rules at a time,
// without a branch per rule.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t DecideChunk(
    const expr::Batch& batch, const expr::Batch::Chunk& chunk,
    const expr::Value* slots, uint32_t** m, uint32_t** u,
    uint64_t* matched_word) {
  const expr::Batch::Outcome outcome = batch.Evaluate(chunk, slots);
  *matched_word = outcome.true_bits;
  uint64_t matched = outcome.true_bits;
  uint64_t undecided = outcome.undecided_bits;
  uint32_t first = chunk.first;
  const uint8_t* labels = chunk.labels;
  uint32_t most_severe = 0;
  for (uint32_t k = 0; k < chunk.count; k += 8) {
    const uint32_t m_byte = static_cast<uint32_t>(matched & 0xff);
    const uint32_t u_byte = static_cast<uint32_t>(undecided & 0xff);
    *m = AppendIndices(*m, m_byte, first);
    *u = AppendIndices(*u, u_byte, first);
    most_severe = std::max<uint32_t>(most_severe, labels[m_byte]);
    matched >>= 8;
    undecided >>= 8;
    first += 8;
    labels += 256;
  }
  return most_severe;
}

// All ones when `b`, else zero.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Mask(bool b) {
  return -static_cast<int>(b);
}

// Combine for a bundle with step tables, from the matched rules' word and
// the most severe matched action's severity: the same outcome, computed
// with masks rather than branches on what matched (a compiler turns plain
// selects back into branches, which requests mispredict).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CombineByTable(
    const CompiledBundle& bundle, uint64_t matched, uint32_t most_severe,
    int current, CoreDecision* out) {
  const DecidePlan& plan = bundle.decide_plan;
  const uint32_t bytes = plan.step_table_bytes;
  const size_t table = size_t{kStepClassBySeverity[most_severe]} * bytes * 256;
  const uint8_t* fixed_step = plan.fixed_step.data() + table;
  const uint8_t* relative_move = plan.relative_move.data() + table;
  int fixed = 0;
  int move = 0;
  for (uint32_t k = 0; k < bytes; ++k) {
    const uint32_t byte = static_cast<uint32_t>(matched & 0xff);
    fixed = std::max<int>(fixed, fixed_step[byte]);
    move = std::max<int>(move, relative_move[byte]);
    matched >>= 8;
    fixed_step += 256;
    relative_move += 256;
  }
  // Combine's target: the highest step the winning action's rules argue
  // for (a relative move of "none" counts as step 0).
  const int relative = (current + move - 2) & Mask(move != 0);
  const int target = std::max(fixed, relative);

  const v1::Action winner = kActionBySeverity[most_severe];
  const int up = Mask(winner == v1::STEP_UP);
  const int down = Mask(winner == v1::STEP_DOWN);
  const int refer = Mask(winner == v1::REFER);
  const int up_to = std::min(target, bundle.max_step);
  const int down_to = std::max(target, 1);
  const int moves_up = up & Mask(up_to > current);
  const int moves_down = down & Mask(down_to < current);
  const int capped_up = up & ~moves_up;
  const int capped_down = down & ~moves_down;
  out->step = current + ((target - current) & refer) +
              ((up_to - current) & moves_up) +
              ((down_to - current) & moves_down);
  const int none = Mask(most_severe == 0);
  const int stay = capped_up | capped_down;
  const int action = (static_cast<int>(winner) & ~none & ~stay) |
                     (static_cast<int>(bundle.default_outcome.action) & none) |
                     (static_cast<int>(v1::STAY) & stay);
  out->action = static_cast<v1::Action>(action);
  out->cap = static_cast<CoreDecision::Cap>(
      (static_cast<int>(CoreDecision::Cap::kStepUp) & capped_up) |
      (static_cast<int>(CoreDecision::Cap::kStepDown) & capped_down));
}

}  // namespace

void Decide(const CompiledBundle& bundle, const expr::Value* slots, int current,
            CoreDecision* out) {
  const expr::Batch* const batch = bundle.decide_plan.batch.get();
  if (batch == nullptr) {
    DecideOneByOne(bundle, slots, current, out);
    return;
  }
  out->cap = CoreDecision::Cap::kNone;
  // AppendIndices writes eight entries past the last.
  const size_t room = batch->program_count() + 8;
  uint32_t* m = out->matched.Reset(room);
  uint32_t* u = out->undecided.Reset(room);
  uint32_t most_severe;
  uint64_t matched;
  const std::vector<expr::Batch::Chunk>& chunks = batch->chunks();
  if (ABSL_PREDICT_TRUE(chunks.size() == 1)) {
    // Up to 63 rules: no loop over chunks to keep registers for.
    most_severe = DecideChunk(*batch, chunks[0], slots, &m, &u, &matched);
    out->matched.CommitTo(m);
    out->undecided.CommitTo(u);
    if (ABSL_PREDICT_TRUE(bundle.decide_plan.step_tables)) {
      CombineByTable(bundle, matched, most_severe, current, out);
      return;
    }
  } else {
    most_severe = 0;
    for (const expr::Batch::Chunk& chunk : chunks) {
      most_severe = std::max(
          most_severe, DecideChunk(*batch, chunk, slots, &m, &u, &matched));
    }
    out->matched.CommitTo(m);
    out->undecided.CommitTo(u);
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

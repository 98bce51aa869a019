#include "engine/expr/batch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "absl/base/optimization.h"
#include "engine/expr/plan.h"

namespace stepwise::expr {
namespace {

constexpr uint32_t kBits = 63;
// Bit of Row::undecided that marks a slot holding an unexpected type.
constexpr uint64_t kMismatch = uint64_t{1} << 63;
// Widest range of int breakpoints laid out as a table (rows of 16 bytes).
constexpr uint64_t kMaxTable = 256;

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

bool IntInRange(const Node& n, int64_t x) {
  return ((n.lo.i <= x) && (x <= n.hi.i)) != n.negate;
}
bool DoubleInRange(const Node& n, double x) {
  return ((n.lo.d <= x) && (x <= n.hi.d)) != n.negate;
}

bool IsChain(Op op) { return op == Op::kAnd || op == Op::kOr; }
// An operand whose value follows from its slot's tag and bool payload alone.
bool IsBoolLeaf(const Node& n) {
  return n.op == Op::kHasFact || n.op == Op::kHasGroup ||
         (n.op == Op::kFact && static_cast<Tag>(n.sub) == Tag::kBool);
}

// The value of such an operand for a slot with `tag` and, for a bool, `b`:
// 0 false, 1 true, 2 undecided (as Machine::Run decides it).
int BoolLeafState(const Node& n, Tag tag, bool b) {
  switch (n.op) {
    case Op::kHasFact:
      return tag != Tag::kAbsent;
    case Op::kHasGroup:
      return tag == Tag::kBool && b;
    default:  // a bool fact: absent, an error or a mismatch is undecided
      return tag == Tag::kBool ? b : 2;
  }
}
bool IsRange(Op op) { return op == Op::kCmpIK || op == Op::kCmpDK; }

// A fact-constant comparison operand, before grouping by slot.
struct Leaf {
  const Node* node;
  bool negate;  // under a `!`
  uint32_t bit;
  bool decider;
  // The operand as a subtree (the `!` included), should it be evaluated on
  // its own after all.
  const Program::Impl* plan;
  uint32_t operand;

  void Add(bool in_range, Batch::Row* row) const {
    if ((in_range != negate) == decider) {
      row->decisive |= uint64_t{1} << bit;
    }
  }
};

// The root's operands: (node, is a nested chain or its negation).
std::vector<uint32_t> RootOperands(const Program::Impl& plan, bool* decider) {
  const Node& root = plan.nodes[plan.root];
  *decider = false;
  if (!IsChain(root.op)) return {plan.root};
  *decider = root.op == Op::kOr;
  return std::vector<uint32_t>(plan.kids.begin() + root.a,
                               plan.kids.begin() + root.a + root.b);
}

// The chain under `index` if it is one, or under a `!` (then *negated).
const Node* ClauseChain(const Program::Impl& plan, uint32_t index,
                        bool* negated) {
  const Node* n = &plan.nodes[index];
  *negated = false;
  if (n->op == Op::kNot && IsChain(plan.nodes[n->a].op)) {
    *negated = true;
    n = &plan.nodes[n->a];
  }
  return IsChain(n->op) ? n : nullptr;
}

size_t ClauseCount(const Program::Impl& plan) {
  bool decider;
  bool negated;
  size_t count = 0;
  for (uint32_t k : RootOperands(plan, &decider)) {
    if (ClauseChain(plan, k, &negated) != nullptr) ++count;
  }
  return count;
}

// Splits `leaves` (of one double slot) into groups of at most 4 distinct
// bounds each. Bounds: `x >= lo`, and `x > hi` as `x >= nextafter(hi, inf)`.
std::vector<double> Bounds(const Node& n) {
  if (std::isnan(n.lo.d) || std::isnan(n.hi.d)) return {};
  std::vector<double> out = {n.lo.d == 0.0 ? 0.0 : n.lo.d};
  if (n.hi.d != INFINITY) {
    const double next = std::nextafter(n.hi.d, INFINITY);
    out.push_back(next == 0.0 ? 0.0 : next);
  }
  return out;
}

}  // namespace

Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;
Batch::~Batch() = default;

Batch::Batch(const std::vector<const Program*>& programs)
    : programs_(programs) {
  size_t next = 0;
  while (next < programs_.size()) {
    // Programs while their bits fit; a program with too many clauses for a
    // chunk of its own keeps the excess as general operands.
    size_t end = next;
    uint32_t bits = 0;
    while (end < programs_.size()) {
      const uint32_t need =
          1 + static_cast<uint32_t>(ClauseCount(*programs_[end]->impl_));
      if (end > next && bits + need > kBits) break;
      bits += need;
      ++end;
    }
    Chunk chunk;
    chunk.first = static_cast<uint32_t>(next);
    chunk.count = static_cast<uint32_t>(end - next);
    chunk.program_mask = (uint64_t{1} << chunk.count) - 1;
    uint32_t next_bit = chunk.count;

    std::map<uint32_t, std::vector<Leaf>> int_leaves;
    std::map<uint32_t, std::vector<Leaf>> double_leaves;
    std::map<uint32_t, std::vector<Leaf>> bool_leaves;
    chunk.operand_begin = static_cast<uint32_t>(operands_.size());
    chunk.clause_begin = static_cast<uint32_t>(clauses_.size());
    for (size_t p = next; p < end; ++p) {
      const Program::Impl& plan = *programs_[p]->impl_;
      if (plan.type.kind != Kind::kBool) chunk.slow = true;
      const uint32_t bit = static_cast<uint32_t>(p - next);
      bool decider;
      const std::vector<uint32_t> kids = RootOperands(plan, &decider);
      (decider ? chunk.or_mask : chunk.and_mask) |= uint64_t{1} << bit;

      const auto add = [&](uint32_t k, uint32_t chain_bit, bool chain_decider) {
        const Node& n = plan.nodes[k];
        const Node& child = plan.nodes[n.a];
        if (IsRange(n.op)) {
          (n.op == Op::kCmpIK ? int_leaves : double_leaves)[n.a].push_back(
              Leaf{&n, false, chain_bit, chain_decider, &plan, k});
        } else if (n.op == Op::kNot && IsRange(child.op)) {
          (child.op == Op::kCmpIK ? int_leaves : double_leaves)[child.a]
              .push_back(
                  Leaf{&child, true, chain_bit, chain_decider, &plan, k});
        } else if (IsBoolLeaf(n)) {
          bool_leaves[n.a].push_back(
              Leaf{&n, false, chain_bit, chain_decider, &plan, k});
        } else if (n.op == Op::kNot && IsBoolLeaf(child)) {
          bool_leaves[child.a].push_back(
              Leaf{&child, true, chain_bit, chain_decider, &plan, k});
        } else {
          operands_.push_back(Operand{&plan, k, chain_bit, chain_decider});
        }
      };
      for (uint32_t k : kids) {
        bool negated;
        const Node* chain = ClauseChain(plan, k, &negated);
        if (chain == nullptr || next_bit >= kBits) {
          add(k, bit, decider);
          continue;
        }
        // The clause's value is its decider when an operand decided it,
        // else undecided or the other value; a `!` exchanges the two.
        Clause clause;
        clause.bit = next_bit++;
        clause.rule = bit;
        const bool clause_decider = chain->op == Op::kOr;
        clause.on_decisive = (clause_decider != negated) == decider;
        clause.on_rest = (!clause_decider != negated) == decider;
        clauses_.push_back(clause);
        for (uint32_t i = 0; i < chain->b; ++i) {
          add(plan.kids[chain->a + i], clause.bit, clause_decider);
        }
      }
    }
    chunk.clause_end = static_cast<uint32_t>(clauses_.size());

    // Int slots: a table over the breakpoints' range when it is small,
    // otherwise each comparison is an operand of its own.
    chunk.int_begin = static_cast<uint32_t>(int_groups_.size());
    for (const auto& [slot, leaves] : int_leaves) {
      std::vector<int64_t> points;
      for (const Leaf& leaf : leaves) {
        const Node& n = *leaf.node;
        if (n.lo.i != kInt64Min) points.push_back(n.lo.i);
        if (n.hi.i != kInt64Max) points.push_back(n.hi.i + 1);
      }
      if (points.empty()) points.push_back(0);
      const auto [lo, hi] = std::minmax_element(points.begin(), points.end());
      // Rows for base = first - 1 (standing for everything below), first,
      // .., last (standing for everything above).
      const int64_t base = *lo == kInt64Min ? *lo : *lo - 1;
      const uint64_t span =
          static_cast<uint64_t>(*hi) - static_cast<uint64_t>(base);
      if (span >= kMaxTable) {
        for (const Leaf& leaf : leaves) {
          operands_.push_back(
              Operand{leaf.plan, leaf.operand, leaf.bit, leaf.decider});
        }
        continue;
      }
      IntGroup group;
      group.slot = slot;
      group.rows = static_cast<uint32_t>(rows_.size());
      group.base = base;
      group.top = *hi;
      Row absent, mismatch;
      mismatch.undecided = kMismatch;
      std::vector<Row> table(span + 1);
      for (const Leaf& leaf : leaves) {
        absent.undecided |= uint64_t{1} << leaf.bit;
        for (uint64_t k = 0; k <= span; ++k) {
          const int64_t x =
              static_cast<int64_t>(static_cast<uint64_t>(base) + k);
          leaf.Add(IntInRange(*leaf.node, x), &table[k]);
        }
      }
      rows_.push_back(absent);
      rows_.push_back(mismatch);
      rows_.insert(rows_.end(), table.begin(), table.end());
      int_groups_.push_back(group);
    }
    chunk.int_end = static_cast<uint32_t>(int_groups_.size());

    // Double slots: the bounds as `x >= bound` tests, at most four to a
    // group; how many hold picks the row. NaN holds none and sits with the
    // values below every lower bound, where no comparison is in range
    // either.
    chunk.double_begin = static_cast<uint32_t>(double_groups_.size());
    for (const auto& [slot, all_leaves] : double_leaves) {
      std::vector<Leaf> pending = all_leaves;
      while (!pending.empty()) {
        std::vector<Leaf> leaves;
        std::vector<double> points;
        std::vector<Leaf> rest;
        for (const Leaf& leaf : pending) {
          std::vector<double> merged = points;
          for (double b : Bounds(*leaf.node)) merged.push_back(b);
          std::sort(merged.begin(), merged.end());
          merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
          if (merged.size() > 4) {
            rest.push_back(leaf);
          } else {
            points = std::move(merged);
            leaves.push_back(leaf);
          }
        }
        pending = std::move(rest);
        DoubleGroup group;
        group.slot = slot;
        group.rows = static_cast<uint32_t>(rows_.size());
        for (size_t j = 0; j < 4; ++j) {
          group.bounds[j] = j < points.size() ? points[j] : NAN;
        }
        Row absent, mismatch;
        mismatch.undecided = kMismatch;
        Row table[5];
        for (const Leaf& leaf : leaves) {
          absent.undecided |= uint64_t{1} << leaf.bit;
          leaf.Add(DoubleInRange(*leaf.node, NAN), &table[0]);
          for (size_t j = 0; j < 4; ++j) {
            // Past the real bounds the count cannot reach; fill anyway.
            const double x = j < points.size() ? points[j] : INFINITY;
            leaf.Add(DoubleInRange(*leaf.node, x), &table[j + 1]);
          }
        }
        rows_.push_back(absent);
        rows_.push_back(mismatch);
        rows_.insert(rows_.end(), table, table + 5);
        double_groups_.push_back(group);
      }
    }
    chunk.double_end = static_cast<uint32_t>(double_groups_.size());

    // has() and bool facts: a row for each tag and bool payload.
    chunk.bool_begin = static_cast<uint32_t>(bool_groups_.size());
    for (const auto& [slot, leaves] : bool_leaves) {
      BoolGroup group;
      group.slot = slot;
      group.rows = static_cast<uint32_t>(rows_.size());
      Row table[16];
      for (const Leaf& leaf : leaves) {
        for (int code = 0; code < 16; ++code) {
          const int state =
              BoolLeafState(*leaf.node, static_cast<Tag>(code >> 1), code & 1);
          if (state == 2) {
            table[code].undecided |= uint64_t{1} << leaf.bit;
          } else {
            leaf.Add(state == 1, &table[code]);
          }
        }
      }
      rows_.insert(rows_.end(), table, table + 16);
      bool_groups_.push_back(group);
    }
    chunk.bool_end = static_cast<uint32_t>(bool_groups_.size());
    chunk.operand_end = static_cast<uint32_t>(operands_.size());
    chunks_.push_back(chunk);
    next = end;
  }
}

void Batch::EvaluateSlowly(const Chunk& chunk, const Value* slots,
                           uint64_t* true_bits,
                           uint64_t* undecided_bits) const {
  uint64_t t = 0, u = 0;
  for (uint32_t i = 0; i < chunk.count; ++i) {
    const Value v = programs_[chunk.first + i]->Evaluate(slots);
    t |= static_cast<uint64_t>(v.is_true()) << i;
    u |= static_cast<uint64_t>(v.undecided()) << i;
  }
  *true_bits = t;
  *undecided_bits = u;
}

namespace {

// A slot's row by its tag, without a branch (the tag of a fact is as
// unpredictable as the fact): the absent row, the mismatch row, or the
// table row `index` for the declared tag.
struct TagPick {
  uint64_t row;
  uint64_t index_mask;
};
constexpr TagPick Pick(Tag tag, Tag want) {
  return tag == want           ? TagPick{2, ~uint64_t{0}}
         : tag == Tag::kAbsent ? TagPick{0, 0}
                               : TagPick{1, 0};
}
template <Tag kWant>
struct TagPicks {
  TagPick pick[8] = {
      Pick(static_cast<Tag>(0), kWant), Pick(static_cast<Tag>(1), kWant),
      Pick(static_cast<Tag>(2), kWant), Pick(static_cast<Tag>(3), kWant),
      Pick(static_cast<Tag>(4), kWant), Pick(static_cast<Tag>(5), kWant),
      Pick(static_cast<Tag>(6), kWant), Pick(static_cast<Tag>(7), kWant)};
};
constexpr TagPicks<Tag::kInt> kIntPicks;
constexpr TagPicks<Tag::kDouble> kDoublePicks;

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t RowOf(const TagPick* picks,
                                                   Tag tag, uint64_t index) {
  const TagPick& p = picks[static_cast<uint8_t>(tag) & 7];
  return p.row + (index & p.index_mask);
}

}  // namespace

void Batch::EvaluateChunk(size_t c, const Value* slots, uint64_t* true_bits,
                          uint64_t* undecided_bits) const {
  const Chunk& chunk = chunks_[c];
  if (ABSL_PREDICT_FALSE(chunk.slow)) {
    EvaluateSlowly(chunk, slots, true_bits, undecided_bits);
    return;
  }
  const Row* const rows = rows_.data();
  uint64_t decisive = 0;
  uint64_t undecided = 0;
  for (uint32_t g = chunk.int_begin; g < chunk.int_end; ++g) {
    const IntGroup& group = int_groups_[g];
    const Value& v = slots[group.slot];
    int64_t x;
    std::memcpy(&x, &v.i, sizeof x);
    const int64_t clamped = std::min(std::max(x, group.base), group.top);
    const Row& row =
        rows[group.rows + RowOf(kIntPicks.pick, v.tag,
                                static_cast<uint64_t>(clamped - group.base))];
    decisive |= row.decisive;
    undecided |= row.undecided;
  }
  for (uint32_t g = chunk.double_begin; g < chunk.double_end; ++g) {
    const DoubleGroup& group = double_groups_[g];
    const Value& v = slots[group.slot];
    double x;
    std::memcpy(&x, &v.i, sizeof x);
    const uint64_t held = static_cast<uint64_t>(x >= group.bounds[0]) +
                          static_cast<uint64_t>(x >= group.bounds[1]) +
                          static_cast<uint64_t>(x >= group.bounds[2]) +
                          static_cast<uint64_t>(x >= group.bounds[3]);
    const Row& row = rows[group.rows + RowOf(kDoublePicks.pick, v.tag, held)];
    decisive |= row.decisive;
    undecided |= row.undecided;
  }
  for (uint32_t g = chunk.bool_begin; g < chunk.bool_end; ++g) {
    const BoolGroup& group = bool_groups_[g];
    const Value& v = slots[group.slot];
    uint8_t payload;
    std::memcpy(&payload, &v.i, sizeof payload);
    const uint64_t code = (static_cast<uint64_t>(v.tag) & 7) * 2 +
                          static_cast<uint64_t>(payload != 0);
    const Row& row = rows[group.rows + code];
    decisive |= row.decisive;
    undecided |= row.undecided;
  }
  for (uint32_t o = chunk.operand_begin; o < chunk.operand_end; ++o) {
    const Operand& operand = operands_[o];
    const Value v = EvalNode(*operand.plan, operand.node, slots);
    const uint64_t bit = uint64_t{1} << operand.bit;
    if (v.tag == Tag::kBool) {
      if (v.b == operand.decider) decisive |= bit;
    } else if (v.undecided()) {
      undecided |= bit;
    }
  }
  if (ABSL_PREDICT_FALSE(undecided & kMismatch)) {
    EvaluateSlowly(chunk, slots, true_bits, undecided_bits);
    return;
  }
  for (uint32_t k = chunk.clause_begin; k < chunk.clause_end; ++k) {
    const Clause& clause = clauses_[k];
    const uint64_t d = (decisive >> clause.bit) & 1;
    const uint64_t u = (undecided >> clause.bit) & 1;
    const uint64_t decides =
        (d & clause.on_decisive) | (~d & ~u & 1 & clause.on_rest);
    decisive |= decides << clause.rule;
    undecided |= (~d & u) << clause.rule;
  }
  // && : a false operand decides, else an undecided one leaves it
  // undecided, else true. || : the same with true and false exchanged.
  *true_bits =
      (decisive & chunk.or_mask) | (~decisive & ~undecided & chunk.and_mask);
  *undecided_bits = ~decisive & undecided & chunk.program_mask;
}

}  // namespace stepwise::expr

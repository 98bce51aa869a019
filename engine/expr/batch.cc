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
constexpr uint64_t kMismatch = Batch::kMismatch;
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

// Which bits an operand decided and which it left undecided, for one value
// of its slot.
struct Row {
  uint64_t decisive = 0;
  uint64_t undecided = 0;
};

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

  void Add(bool in_range, Row* row) const {
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

// Layer j (1-based: the j-th nested chain of every program that has one) of
// programs with `clauses[p]` nested chains each spans programs first..last.
// j must not exceed the largest clauses[p].
std::pair<uint32_t, uint32_t> LayerSpan(const std::vector<uint32_t>& clauses,
                                        uint32_t j) {
  uint32_t first = 0;
  uint32_t last = 0;
  bool any = false;
  for (uint32_t p = 0; p < clauses.size(); ++p) {
    if (clauses[p] < j) continue;
    if (!any) first = p;
    last = p;
    any = true;
  }
  return {first, last};
}

// Bits a chunk needs for such programs: one per program, and for each layer
// the span from its first to its last program.
uint32_t LayoutBits(const std::vector<uint32_t>& clauses) {
  uint32_t bits = static_cast<uint32_t>(clauses.size());
  const uint32_t layers =
      clauses.empty() ? 0 : *std::max_element(clauses.begin(), clauses.end());
  for (uint32_t j = 1; j <= layers; ++j) {
    const auto [first, last] = LayerSpan(clauses, j);
    bits += last - first + 1;
  }
  return bits;
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

Batch::Batch(const std::vector<const Program*>& programs,
             const std::vector<uint8_t>& labels)
    : programs_(programs) {
  std::vector<std::pair<size_t, size_t>> int_block_spans;  // into blocks_
  size_t next = 0;
  while (next < programs_.size()) {
    // Programs while their bits fit; a program with too many clauses for a
    // chunk of its own keeps the excess as general operands.
    std::vector<uint32_t> clauses;
    size_t end = next;
    while (end < programs_.size()) {
      uint32_t need =
          static_cast<uint32_t>(ClauseCount(*programs_[end]->impl_));
      if (end == next) need = std::min(need, kBits - 1);
      clauses.push_back(need);
      if (end > next && LayoutBits(clauses) > kBits) {
        clauses.pop_back();
        break;
      }
      ++end;
    }
    Chunk chunk;
    chunk.first = static_cast<uint32_t>(next);
    chunk.count = static_cast<uint32_t>(end - next);
    chunk.program_mask = (uint64_t{1} << chunk.count) - 1;

    // Layer j's clause of program p sits at bit shift_j + p.
    chunk.layer_begin = static_cast<uint32_t>(layers_.size());
    {
      const uint32_t layers = *std::max_element(clauses.begin(), clauses.end());
      uint32_t start = chunk.count;
      for (uint32_t j = 1; j <= layers; ++j) {
        const auto [first, last] = LayerSpan(clauses, j);
        Layer layer;
        layer.shift = start - first;
        start += last - first + 1;
        layers_.push_back(layer);
      }
    }
    chunk.layer_end = static_cast<uint32_t>(layers_.size());

    std::map<uint32_t, std::vector<Leaf>> int_leaves;
    std::map<uint32_t, std::vector<Leaf>> double_leaves;
    std::map<uint32_t, std::vector<Leaf>> bool_leaves;
    chunk.operand_begin = static_cast<uint32_t>(operands_.size());
    for (size_t p = next; p < end; ++p) {
      const Program::Impl& plan = *programs_[p]->impl_;
      if (plan.type.kind != Kind::kBool) chunk.slow = true;
      const uint32_t bit = static_cast<uint32_t>(p - next);
      const uint64_t program_bit = uint64_t{1} << bit;
      bool decider;
      const std::vector<uint32_t> kids = RootOperands(plan, &decider);
      (decider ? chunk.or_mask : chunk.and_mask) |= program_bit;

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
      uint32_t clause_count = 0;
      for (uint32_t k : kids) {
        bool negated;
        const Node* chain = ClauseChain(plan, k, &negated);
        if (chain == nullptr || clause_count >= clauses[bit]) {
          add(k, bit, decider);
          continue;
        }
        // The clause's value is its decider when an operand decided it,
        // else undecided or the other value; a `!` exchanges the two.
        Layer& layer = layers_[chunk.layer_begin + clause_count++];
        const uint32_t clause_bit = layer.shift + bit;
        const bool clause_decider = chain->op == Op::kOr;
        layer.mask |= program_bit;
        if ((clause_decider != negated) == decider) {
          layer.on_decisive |= program_bit;
        }
        if ((!clause_decider != negated) == decider) {
          layer.on_rest |= program_bit;
        }
        for (uint32_t i = 0; i < chain->b; ++i) {
          add(plan.kids[chain->a + i], clause_bit, clause_decider);
        }
      }
    }

    // A block of eight rows, one per tag: absent, `want` (`row`), and the
    // mismatch row for every other tag.
    const auto add_block = [&](Tag want, const Row& absent, const Row& row) {
      const uint32_t first = static_cast<uint32_t>(decisive_.size());
      for (int tag = 0; tag < 8; ++tag) {
        const Row r = tag == static_cast<int>(Tag::kAbsent) ? absent
                      : tag == static_cast<int>(want)       ? row
                                                            : Row{0, kMismatch};
        decisive_.push_back(r.decisive);
        undecided_.push_back(r.undecided);
      }
      return first;
    };

    // Int slots: a table over the breakpoints' range when it is small,
    // otherwise each comparison is an operand of its own.
    chunk.int_begin = static_cast<uint32_t>(int_tests_.size());
    chunk.int_pair_begin = static_cast<uint32_t>(int_pairs_.size());
    for (const auto& [slot, leaves] : int_leaves) {
      std::vector<int64_t> points;
      for (const Leaf& leaf : leaves) {
        const Node& n = *leaf.node;
        if (n.lo.i != kInt64Min) points.push_back(n.lo.i);
        if (n.hi.i != kInt64Max) points.push_back(n.hi.i + 1);
      }
      if (points.empty()) points.push_back(0);
      std::sort(points.begin(), points.end());
      points.erase(std::unique(points.begin(), points.end()), points.end());
      Row absent;
      for (const Leaf& leaf : leaves) {
        absent.undecided |= uint64_t{1} << leaf.bit;
      }
      if (points.size() <= 2) {
        // One or two breakpoints p (none is kInt64Min): `x > p - 1` for
        // each, padded with a cut no value passes.
        IntPair pair;
        pair.slot = slot * static_cast<uint32_t>(sizeof(Value));
        pair.cuts[0] = points[0] - 1;
        pair.cuts[1] = points.size() > 1 ? points[1] - 1 : kInt64Max;
        pair.rows = static_cast<uint32_t>(decisive_.size());
        for (size_t j = 0; j < 3; ++j) {
          // A value of each region: below the first breakpoint, from it,
          // from the second (unreachable with one: filled anyway).
          const int64_t x =
              j == 0 ? points[0] - 1 : points[std::min(j, points.size()) - 1];
          Row row;
          for (const Leaf& leaf : leaves) {
            leaf.Add(IntInRange(*leaf.node, x), &row);
          }
          add_block(Tag::kInt, absent, row);
        }
        int_pairs_.push_back(pair);
        continue;
      }
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
      IntTest test;
      test.slot = slot * static_cast<uint32_t>(sizeof(Value));
      test.base = base;
      test.top = *hi;
      // Values between breakpoints share their row: one block per distinct
      // row.
      std::map<std::pair<uint64_t, uint64_t>, uint32_t> distinct;
      const size_t blocks_begin = blocks_.size();
      for (uint64_t k = 0; k <= span; ++k) {
        const int64_t x = static_cast<int64_t>(static_cast<uint64_t>(base) + k);
        Row row;
        for (const Leaf& leaf : leaves) {
          leaf.Add(IntInRange(*leaf.node, x), &row);
        }
        const auto [it, inserted] =
            distinct.try_emplace({row.decisive, row.undecided}, 0);
        if (inserted) it->second = add_block(Tag::kInt, absent, row);
        blocks_.push_back(it->second);
      }
      int_block_spans.emplace_back(int_tests_.size(), blocks_begin);
      int_tests_.push_back(test);
    }
    chunk.int_end = static_cast<uint32_t>(int_tests_.size());
    chunk.int_pair_end = static_cast<uint32_t>(int_pairs_.size());

    // Double slots: the bounds as `x >= bound` tests, at most four to a
    // group; how many hold picks the block. NaN holds none and sits with
    // the values below every lower bound, where no comparison is in range
    // either.
    chunk.double_begin = static_cast<uint32_t>(double_tests_.size());
    chunk.double_pair_begin = static_cast<uint32_t>(double_pairs_.size());
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
        Row absent;
        for (const Leaf& leaf : leaves) {
          absent.undecided |= uint64_t{1} << leaf.bit;
        }
        if (points.size() <= 2) {
          DoublePair pair;
          pair.slot = slot * static_cast<uint32_t>(sizeof(Value));
          pair.bounds[0] = points.size() > 0 ? points[0] : NAN;
          pair.bounds[1] = points.size() > 1 ? points[1] : NAN;
          pair.rows = static_cast<uint32_t>(decisive_.size());
          for (size_t j = 0; j < 3; ++j) {
            Row row;
            for (const Leaf& leaf : leaves) {
              const double x = j == 0               ? NAN
                               : j <= points.size() ? points[j - 1]
                                                    : INFINITY;
              leaf.Add(DoubleInRange(*leaf.node, x), &row);
            }
            add_block(Tag::kDouble, absent, row);
          }
          double_pairs_.push_back(pair);
          continue;
        }
        DoubleTest test;
        test.slot = slot * static_cast<uint32_t>(sizeof(Value));
        for (size_t j = 0; j < 4; ++j) {
          test.bounds[j] = j < points.size() ? points[j] : NAN;
        }
        Row table[5];
        for (const Leaf& leaf : leaves) {
          leaf.Add(DoubleInRange(*leaf.node, NAN), &table[0]);
          for (size_t j = 0; j < 4; ++j) {
            // Past the real bounds the count cannot reach; fill anyway.
            const double x = j < points.size() ? points[j] : INFINITY;
            leaf.Add(DoubleInRange(*leaf.node, x), &table[j + 1]);
          }
        }
        test.rows = add_block(Tag::kDouble, absent, table[0]);
        for (size_t j = 1; j < 5; ++j) {
          add_block(Tag::kDouble, absent, table[j]);
        }
        double_tests_.push_back(test);
      }
    }
    chunk.double_end = static_cast<uint32_t>(double_tests_.size());
    chunk.double_pair_end = static_cast<uint32_t>(double_pairs_.size());

    // has() and bool facts: a row for each tag and bool payload.
    chunk.bool_begin = static_cast<uint32_t>(bool_tests_.size());
    for (const auto& [slot, leaves] : bool_leaves) {
      BoolTest test;
      test.slot = slot * static_cast<uint32_t>(sizeof(Value));
      test.rows = static_cast<uint32_t>(decisive_.size());
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
      for (const Row& row : table) {
        decisive_.push_back(row.decisive);
        undecided_.push_back(row.undecided);
      }
      bool_tests_.push_back(test);
    }
    chunk.bool_end = static_cast<uint32_t>(bool_tests_.size());
    chunk.operand_end = static_cast<uint32_t>(operands_.size());

    chunk.labels_begin = static_cast<uint32_t>(labels_.size());
    for (uint32_t k = 0; k < chunk.count; k += 8) {
      for (uint32_t byte = 0; byte < 256; ++byte) {
        uint8_t label = 0;
        for (uint32_t i = 0; i < 8 && k + i < chunk.count; ++i) {
          if (((byte >> i) & 1) && !labels.empty()) {
            label = std::max(label, labels[next + k + i]);
          }
        }
        labels_.push_back(label);
      }
    }
    chunks_.push_back(chunk);
    next = end;
  }
  // The vectors no longer grow.
  for (const auto& [test, begin] : int_block_spans) {
    int_tests_[test].blocks = blocks_.data() + begin;
  }
  for (Chunk& chunk : chunks_) {
    chunk.ints = int_tests_.data() + chunk.int_begin;
    chunk.ints_end = int_tests_.data() + chunk.int_end;
    chunk.doubles = double_tests_.data() + chunk.double_begin;
    chunk.doubles_end = double_tests_.data() + chunk.double_end;
    chunk.int_pairs = int_pairs_.data() + chunk.int_pair_begin;
    chunk.int_pairs_end = int_pairs_.data() + chunk.int_pair_end;
    chunk.double_pairs = double_pairs_.data() + chunk.double_pair_begin;
    chunk.double_pairs_end = double_pairs_.data() + chunk.double_pair_end;
    chunk.bools = bool_tests_.data() + chunk.bool_begin;
    chunk.bools_end = bool_tests_.data() + chunk.bool_end;
    chunk.layers = layers_.data() + chunk.layer_begin;
    chunk.layers_end = layers_.data() + chunk.layer_end;
    chunk.labels = labels_.data() + chunk.labels_begin;
  }
}

Batch::Outcome Batch::EvaluateSlowly(const Chunk& chunk,
                                     const Value* slots) const {
  uint64_t t = 0, u = 0;
  for (uint32_t i = 0; i < chunk.count; ++i) {
    const Value v = programs_[chunk.first + i]->Evaluate(slots);
    t |= static_cast<uint64_t>(v.is_true()) << i;
    u |= static_cast<uint64_t>(v.undecided()) << i;
  }
  return Outcome{t, u};
}

uint64_t Batch::EvaluateOperands(const Chunk& chunk, const Value* slots,
                                 uint64_t* undecided) const {
  uint64_t d = 0;
  uint64_t u = 0;
  for (uint32_t o = chunk.operand_begin; o < chunk.operand_end; ++o) {
    const Operand& operand = operands_[o];
    const Value v = EvalNode(*operand.plan, operand.node, slots);
    const uint64_t bit = uint64_t{1} << operand.bit;
    if (v.tag == Tag::kBool) {
      if (v.b == operand.decider) d |= bit;
    } else if (v.undecided()) {
      u |= bit;
    }
  }
  *undecided = u;
  return d;
}

}  // namespace stepwise::expr

// The evaluator: one switch over the plan's opcodes, and Program::Evaluate's
// loop over a root && / || chain. Every type is known at compile time, so a
// decided operand is read straight from the union; a tag is tested only to
// tell a value from an absent fact or an error.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "absl/base/optimization.h"
#include "engine/expr/plan.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

template <typename T>
inline bool Compare(Rel rel, T a, T b) {
  switch (rel) {
    case Rel::kLt:
      return a < b;
    case Rel::kLe:
      return a <= b;
    case Rel::kGt:
      return a > b;
    case Rel::kGe:
      return a >= b;
    case Rel::kEq:
      return a == b;
    case Rel::kNe:
      return a != b;
  }
  return false;
}

inline bool CompareStrings(Rel rel, const std::string& a,
                           const std::string& b) {
  if (rel == Rel::kEq) return a == b;
  if (rel == Rel::kNe) return a != b;
  return Compare(rel, a.compare(b), 0);
}

// A slot whose tag is not the declared one: absent (named by its slot), an
// error, an int where a double was declared (promoted), or a mismatch.
ABSL_ATTRIBUTE_NOINLINE Value SlotSlow(const Value& v, uint32_t slot,
                                       Tag want) {
  if (v.tag == Tag::kAbsent) return Value::Absent(slot);
  if (v.tag == Tag::kError) return v;
  if (want == Tag::kDouble && v.tag == Tag::kInt) {
    return Value::Double(static_cast<double>(v.i));
  }
  return Value::Error(ErrorCode::kTypeMismatch);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int InRange(const Node& n, int64_t x) {
  return static_cast<int>((n.lo.i <= x) & (x <= n.hi.i)) ^ n.negate;
}
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int InRange(const Node& n, double x) {
  return static_cast<int>((n.lo.d <= x) & (x <= n.hi.d)) ^ n.negate;
}

// The result of a leaf that && / || chains evaluate inline, without a call:
// 0 false, 1 true, or kGeneral when the node is no such leaf or its slot
// needs the slow path (absent, error, unexpected type).
constexpr int kGeneral = 2;

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int LeafState(const Node& n,
                                                  const Value* slots) {
  switch (n.op) {
    case Op::kCmpIK: {
      const Value& v = slots[n.a];
      if (ABSL_PREDICT_FALSE(v.tag != Tag::kInt)) return kGeneral;
      return InRange(n, v.i);
    }
    case Op::kCmpDK: {
      const Value& v = slots[n.a];
      if (ABSL_PREDICT_FALSE(v.tag != Tag::kDouble)) return kGeneral;
      return InRange(n, v.d);
    }
    case Op::kCmpIDK: {
      const Value& v = slots[n.a];
      if (ABSL_PREDICT_FALSE(v.tag != Tag::kInt)) return kGeneral;
      return InRange(n, static_cast<double>(v.i));
    }
    case Op::kHasFact:
      return slots[n.a].tag != Tag::kAbsent;
    case Op::kHasGroup: {
      const Value& v = slots[n.a];
      return v.tag == Tag::kBool && v.b;
    }
    case Op::kEqSK:
    case Op::kNeSK: {
      const Value& v = slots[n.a];
      if (ABSL_PREDICT_FALSE(v.tag != Tag::kString)) return kGeneral;
      return (*v.s == *n.k.s) == (n.op == Op::kEqSK);
    }
    case Op::kInSK: {
      const Value& v = slots[n.a];
      if (ABSL_PREDICT_FALSE(v.tag != Tag::kList)) return kGeneral;
      const std::string& needle = *n.k.s;
      for (uint32_t i = 0; i < v.aux; ++i) {
        const Value& e = v.elems[i];
        if (e.tag == Tag::kString && *e.s == needle) return 1;
      }
      return 0;
    }
    default:
      return kGeneral;
  }
}

// A leaf whose slot did not hold the declared tag.
ABSL_ATTRIBUTE_NOINLINE Value LeafSlow(const Node& n, const Value* slots) {
  const Value& v = slots[n.a];
  switch (n.op) {
    case Op::kCmpDK: {
      const Value x = SlotSlow(v, n.a, Tag::kDouble);
      if (x.undecided()) return x;
      return Value::Bool(InRange(n, x.d));
    }
    case Op::kCmpIK:
    case Op::kCmpIDK: {
      const Value x = SlotSlow(v, n.a, Tag::kInt);
      if (x.undecided()) return x;
      return Value::Bool(n.op == Op::kCmpIK
                             ? InRange(n, x.i)
                             : InRange(n, static_cast<double>(x.i)));
    }
    case Op::kEqSK:
    case Op::kNeSK:
      return SlotSlow(v, n.a, Tag::kString);
    default:
      return SlotSlow(v, n.a, Tag::kList);
  }
}

// CEL's commutative && / ||: a deciding operand wins wherever it is;
// otherwise an absent operand is reported before an error, and either before
// the chain's neutral result. Returns true when `v` decides the chain.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool ChainStep(const Value& v, bool decider,
                                                   Value* pending) {
  if (v.tag == Tag::kBool) return v.b == decider;
  if (pending->tag == Tag::kBool ||
      (pending->tag == Tag::kError && v.tag == Tag::kAbsent)) {
    *pending = v;
  }
  return false;
}

bool InEquals(InKind kind, const Value& needle, const Value& e) {
  switch (kind) {
    case InKind::kInt:
      return e.tag == Tag::kInt && e.i == needle.i;
    case InKind::kDouble:
      return e.tag == Tag::kDouble && e.d == needle.d;
    case InKind::kDoubleInIntList:
      return e.tag == Tag::kInt && static_cast<double>(e.i) == needle.d;
    case InKind::kString:
      return e.tag == Tag::kString && *e.s == *needle.s;
    case InKind::kBool:
      return e.tag == Tag::kBool && e.b == needle.b;
  }
  return false;
}

// kRecord: the explainer's variant, which also stores the value of every
// node it evaluates in record[node] (see EvalNodeRecording); the other
// instantiation is the evaluator itself, unchanged by it.
template <bool kRecord>
struct MachineT {
  const Node* nodes;
  const uint32_t* kids;
  const Value* slots;
  Value* record;

  ABSL_ATTRIBUTE_ALWAYS_INLINE Value Run(uint32_t index) const {
    if constexpr (kRecord) {
      const Value v = Body(index);
      record[index] = v;
      return v;
    } else {
      return Body(index);
    }
  }

  Value Body(uint32_t index) const {
    const Node& n = nodes[index];
    switch (n.op) {
      case Op::kConst:
        return n.k;
      case Op::kFact: {
        const Value& v = slots[n.a];
        if (ABSL_PREDICT_TRUE(v.tag == static_cast<Tag>(n.sub))) return v;
        return SlotSlow(v, n.a, static_cast<Tag>(n.sub));
      }

      case Op::kCmpIK:
      case Op::kCmpDK:
      case Op::kCmpIDK:
      case Op::kHasFact:
      case Op::kHasGroup:
      case Op::kEqSK:
      case Op::kNeSK:
      case Op::kInSK: {
        const int state = LeafState(n, slots);
        if (ABSL_PREDICT_TRUE(state != kGeneral)) return Value::Bool(state);
        return LeafSlow(n, slots);
      }

      case Op::kNot: {
        const Value v = Run(n.a);
        if (v.tag == Tag::kBool) return Value::Bool(!v.b);
        return v;
      }
      case Op::kAnd:
      case Op::kOr: {
        const bool decider = n.op == Op::kOr;
        Value pending = Value::Bool(!decider);
        const uint32_t* k = kids + n.a;
        for (uint32_t i = 0; i < n.b; ++i) {
          const int state = LeafState(nodes[k[i]], slots);
          if constexpr (kRecord) {
            if (state != kGeneral) record[k[i]] = Value::Bool(state);
          }
          if (state == static_cast<int>(decider)) return Value::Bool(decider);
          if (state == kGeneral) {
            const Value v = Run(k[i]);
            if (ChainStep(v, decider, &pending)) return v;
          }
        }
        return pending;
      }
      case Op::kCond: {
        const Value c = Run(n.a);
        if (c.tag != Tag::kBool) return c;
        return Run(c.b ? n.b : n.c);
      }

      case Op::kNegI: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        if (v.i == kInt64Min) return Value::Error(ErrorCode::kIntegerOverflow);
        return Value::Int(-v.i);
      }
      case Op::kNegD: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        return Value::Double(-v.d);
      }
      case Op::kToDouble: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        return Value::Double(static_cast<double>(v.i));
      }
      case Op::kAbsI: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        if (v.i == kInt64Min) return Value::Error(ErrorCode::kIntegerOverflow);
        return Value::Int(v.i < 0 ? -v.i : v.i);
      }
      case Op::kAbsD: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        return Value::Double(std::fabs(v.d));
      }

#define STEPWISE_OPERANDS      \
  const Value l = Run(n.a);    \
  if (l.undecided()) return l; \
  const Value r = Run(n.b);    \
  if (r.undecided()) return r;
      case Op::kAddI: {
        STEPWISE_OPERANDS
        int64_t out;
        if (__builtin_add_overflow(l.i, r.i, &out)) {
          return Value::Error(ErrorCode::kIntegerOverflow);
        }
        return Value::Int(out);
      }
      case Op::kSubI: {
        STEPWISE_OPERANDS
        int64_t out;
        if (__builtin_sub_overflow(l.i, r.i, &out)) {
          return Value::Error(ErrorCode::kIntegerOverflow);
        }
        return Value::Int(out);
      }
      case Op::kMulI: {
        STEPWISE_OPERANDS
        int64_t out;
        if (__builtin_mul_overflow(l.i, r.i, &out)) {
          return Value::Error(ErrorCode::kIntegerOverflow);
        }
        return Value::Int(out);
      }
      case Op::kDivI: {
        STEPWISE_OPERANDS
        if (r.i == 0) return Value::Error(ErrorCode::kDivisionByZero);
        if (l.i == kInt64Min && r.i == -1) {
          return Value::Error(ErrorCode::kIntegerOverflow);
        }
        return Value::Int(l.i / r.i);
      }
      case Op::kModI: {
        STEPWISE_OPERANDS
        if (r.i == 0) return Value::Error(ErrorCode::kModulusByZero);
        if (l.i == kInt64Min && r.i == -1) {
          return Value::Error(ErrorCode::kIntegerOverflow);
        }
        return Value::Int(l.i % r.i);
      }
      case Op::kAddD: {
        STEPWISE_OPERANDS
        return Value::Double(l.d + r.d);
      }
      case Op::kSubD: {
        STEPWISE_OPERANDS
        return Value::Double(l.d - r.d);
      }
      case Op::kMulD: {
        STEPWISE_OPERANDS
        return Value::Double(l.d * r.d);
      }
      case Op::kDivD: {
        STEPWISE_OPERANDS
        return Value::Double(l.d / r.d);
      }
      case Op::kRelI: {
        STEPWISE_OPERANDS
        return Value::Bool(Compare(static_cast<Rel>(n.sub), l.i, r.i));
      }
      case Op::kRelD: {
        STEPWISE_OPERANDS
        return Value::Bool(Compare(static_cast<Rel>(n.sub), l.d, r.d));
      }
      case Op::kRelS: {
        STEPWISE_OPERANDS
        return Value::Bool(CompareStrings(static_cast<Rel>(n.sub), *l.s, *r.s));
      }
      case Op::kRelB: {
        STEPWISE_OPERANDS
        return Value::Bool(static_cast<Rel>(n.sub) == Rel::kEq ? l.b == r.b
                                                               : l.b != r.b);
      }
      case Op::kIn: {
        STEPWISE_OPERANDS
        const InKind kind = static_cast<InKind>(n.sub);
        for (uint32_t i = 0; i < r.aux; ++i) {
          if (InEquals(kind, l, r.elems[i])) return Value::Bool(true);
        }
        return Value::Bool(false);
      }
#undef STEPWISE_OPERANDS

      case Op::kInList: {
        const Value needle = Run(n.c);
        if (needle.undecided()) return needle;
        // The list is built (and so fully decided) before it is searched.
        const InKind kind = static_cast<InKind>(n.sub);
        bool found = false;
        const uint32_t* k = kids + n.a;
        for (uint32_t i = 0; i < n.b; ++i) {
          const Value e = Run(k[i]);
          if (e.undecided()) return e;
          found = found || InEquals(kind, needle, e);
        }
        return Value::Bool(found);
      }
      case Op::kSizeS: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        return Value::Int(CountCodePoints(*v.s));
      }
      case Op::kSizeL: {
        const Value v = Run(n.a);
        if (v.undecided()) return v;
        return Value::Int(v.aux);
      }
      case Op::kSizeList: {
        const uint32_t* k = kids + n.a;
        for (uint32_t i = 0; i < n.b; ++i) {
          const Value e = Run(k[i]);
          if (e.undecided()) return e;
        }
        return Value::Int(n.b);
      }
      case Op::kMinI:
      case Op::kMaxI: {
        const uint32_t* k = kids + n.a;
        Value best = Run(k[0]);
        if (best.undecided()) return best;
        for (uint32_t i = 1; i < n.b; ++i) {
          const Value v = Run(k[i]);
          if (v.undecided()) return v;
          if (n.op == Op::kMinI ? v.i < best.i : v.i > best.i) best = v;
        }
        return best;
      }
      case Op::kMinD:
      case Op::kMaxD: {
        // NaN wins: a minimum over an unknown quantity is unknown.
        const uint32_t* k = kids + n.a;
        Value best = Run(k[0]);
        if (best.undecided()) return best;
        for (uint32_t i = 1; i < n.b; ++i) {
          const Value v = Run(k[i]);
          if (v.undecided()) return v;
          if (std::isnan(v.d) ||
              (n.op == Op::kMinD ? v.d < best.d : v.d > best.d)) {
            if (!std::isnan(best.d)) best = v;
          }
        }
        return best;
      }
    }
    return Value::Error(ErrorCode::kInvalidArgument);
  }
};
using Machine = MachineT<false>;

}  // namespace

bool IsInlineLeaf(Op op) {
  switch (op) {
    case Op::kCmpIK:
    case Op::kCmpDK:
    case Op::kCmpIDK:
    case Op::kHasFact:
    case Op::kHasGroup:
    case Op::kEqSK:
    case Op::kNeSK:
    case Op::kInSK:
      return true;
    default:
      return false;
  }
}

namespace {

// The root chain from operand `i` on, through the general path; `pending`
// is what the operands before `i` left undecided.
ABSL_ATTRIBUTE_NOINLINE Value ChainFrom(const Program::Impl& plan,
                                        const Value* slots, size_t i,
                                        Value pending) {
  const bool decider = plan.top_op == Op::kOr;
  for (; i < plan.top.size(); ++i) {
    const int state = LeafState(plan.nodes[plan.top_index[i]], slots);
    if (state == static_cast<int>(decider)) return Value::Bool(decider);
    if (state == kGeneral) {
      const Value v = EvalNode(plan.nodes.data(), plan.kids.data(),
                               plan.top_index[i], slots);
      if (ChainStep(v, decider, &pending)) return v;
    }
  }
  return pending;
}

// The hot path. The common operands (an int or double fact compared with a
// constant, its slot holding the declared type) are tested inline; at the
// first other operand the loop hands the rest of the chain to ChainFrom.
// A plan whose root is no chain.
ABSL_ATTRIBUTE_NOINLINE Value EvalRoot(const Program::Impl& plan,
                                       const Value* slots) {
  return Machine{plan.nodes.data(), plan.kids.data(), slots, nullptr}.Run(
      plan.root);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline Value EvalPlanInline(
    const Program::Impl& plan, const Value* slots) {
  // Both ways out of the loop are tail calls, so the hot path needs no
  // stack frame.
  if (plan.top_op == Op::kConst) return EvalRoot(plan, slots);
  const int decider = plan.top_op == Op::kOr;
  const Node* const begin = plan.top.data();
  const Node* const end = begin + plan.top.size();
  for (const Node* n = begin; n != end; ++n) {
    // Both readings of the payload are computed and one is kept, so the
    // operand's kind costs no branch.
    const Value& v = slots[n->a];
    int64_t as_int;
    double as_double;
    std::memcpy(&as_int, &v.i, sizeof as_int);
    std::memcpy(&as_double, &v.i, sizeof as_double);
    const int in_int = (n->lo.i <= as_int) & (as_int <= n->hi.i);
    const int in_double = (n->lo.d <= as_double) & (as_double <= n->hi.d);
    const int state = (n->op == Op::kCmpIK ? in_int : in_double) ^ n->negate;
    if (ABSL_PREDICT_FALSE(static_cast<uint8_t>(v.tag) != n->c)) {
      return ChainFrom(plan, slots, static_cast<size_t>(n - begin),
                       Value::Bool(!decider));
    }
    if (state == decider) return Value::Bool(decider);
  }
  return Value::Bool(!decider);
}

}  // namespace

Value Program::Evaluate(const Value* slots) const {
  return EvalPlanInline(*impl_, slots);
}

Value EvalNode(const Node* nodes, const uint32_t* kids, uint32_t index,
               const Value* slots) {
  return Machine{nodes, kids, slots, nullptr}.Run(index);
}

Value EvalNodeRecording(const Program::Impl& plan, uint32_t index,
                        const Value* slots, Value* record) {
  return MachineT<true>{plan.nodes.data(), plan.kids.data(), slots, record}.Run(
      index);
}

std::vector<uint32_t> NodeChildren(const Program::Impl& plan, uint32_t index) {
  absl::InlinedVector<uint32_t, 8> kids;
  NodeChildren(plan, index, &kids);
  return std::vector<uint32_t>(kids.begin(), kids.end());
}

void NodeChildren(const Program::Impl& plan, uint32_t index,
                  absl::InlinedVector<uint32_t, 8>* out) {
  out->clear();
  const Node& n = plan.nodes[index];
  const auto range = [&](std::initializer_list<uint32_t> first) {
    out->assign(first.begin(), first.end());
    for (uint32_t i = 0; i < n.b; ++i) out->push_back(plan.kids[n.a + i]);
  };
  const auto set = [&](std::initializer_list<uint32_t> kids) {
    out->assign(kids.begin(), kids.end());
  };
  switch (n.op) {
    case Op::kConst:
    case Op::kFact:
    case Op::kHasFact:
    case Op::kHasGroup:
    case Op::kEqSK:
    case Op::kNeSK:
    case Op::kInSK:
      return;
    case Op::kNot:
    case Op::kNegI:
    case Op::kNegD:
    case Op::kToDouble:
    case Op::kAbsI:
    case Op::kAbsD:
    case Op::kSizeS:
    case Op::kSizeL:
      set({n.a});
      return;
    case Op::kAnd:
    case Op::kOr:
    case Op::kSizeList:
    case Op::kMinI:
    case Op::kMaxI:
    case Op::kMinD:
    case Op::kMaxD:
      range({});
      return;
    case Op::kInList:
      range({n.c});
      return;
    case Op::kCond:
      set({n.a, n.b, n.c});
      return;
    case Op::kAddI:
    case Op::kSubI:
    case Op::kMulI:
    case Op::kDivI:
    case Op::kModI:
    case Op::kAddD:
    case Op::kSubD:
    case Op::kMulD:
    case Op::kDivD:
    case Op::kRelI:
    case Op::kRelD:
    case Op::kRelS:
    case Op::kRelB:
    case Op::kIn:
      set({n.a, n.b});
      return;
    default:
      return;  // fused comparisons read a slot, no child
  }
}

}  // namespace stepwise::expr

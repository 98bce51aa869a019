// Explanations: the expression re-rendered from its plan with the value each
// fact had ("phq9.total = 13 >= 10"), plus the absent facts and errors an
// undecided result came from. Values are taken from the evaluator itself, so
// an explanation can never disagree with Evaluate.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/container/fixed_array.h"
#include "absl/container/inlined_vector.h"
#include "engine/expr/plan.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

// Binding strength of rendered text, loosest first. A fact shown with its
// value ("x = 3") binds looser than arithmetic but tighter than comparison,
// so "(x = 3) + 1 >= y = 2" reads unambiguously.
enum Prec : int {
  kPrecCond = 1,
  kPrecOr,
  kPrecAnd,
  kPrecRel,
  kPrecShown,
  kPrecAdd,
  kPrecMul,
  kPrecUnary,
  kPrecAtom,
};

std::string_view RelText(Rel rel) {
  switch (rel) {
    case Rel::kLt:
      return "<";
    case Rel::kLe:
      return "<=";
    case Rel::kGt:
      return ">";
    case Rel::kGe:
      return ">=";
    case Rel::kEq:
      return "==";
    case Rel::kNe:
      return "!=";
  }
  return "?";
}

Rel Unmirror(Rel rel) {
  switch (rel) {
    case Rel::kLt:
      return Rel::kGt;
    case Rel::kLe:
      return Rel::kGe;
    case Rel::kGt:
      return Rel::kLt;
    case Rel::kGe:
      return Rel::kLe;
    default:
      return rel;
  }
}

constexpr std::string_view kSkipped = "(...)";

// A node whose value was not recorded yet (no Value has this tag).
constexpr Tag kUnrecorded = static_cast<Tag>(0xFF);

// A double AppendValue renders as its integer digits and ".0".
bool SmallWholeDouble(double d) {
  return d > -1e4 && d < 1e4 && d == std::trunc(d) &&
         !(d == 0 && std::signbit(d));
}

// A fused node's constant: "name = value" when it came from a define.
void AppendConstText(const Program::Impl& plan, const Node& n,
                     const NodeInfo& info, std::string* out) {
  if (info.const_define >= 0) {
    out->append(plan.define_names[info.const_define]);
    out->append(" = ");
  }
  AppendValue(n.k, out);
}

// Renders into one string, appending: a node's binding strength is known
// from the plan without rendering it (Prec), so parentheses are decided
// before the text is written and no intermediate strings are built.
class Explainer {
 public:
  // `out` may be null when only Causes is called.
  Explainer(const Program::Impl& plan, const Value* slots, std::string* out)
      : plan_(plan),
        slots_(slots),
        out_(out),
        values_(plan.nodes.size(), Unrecorded()) {}

  // The root is evaluated first, which records every node the evaluation
  // reaches in one pass; rendering then reads the recorded values.
  void Text() {
    V(plan_.root);
    Render(plan_.root);
    Flush();
  }

  // The paths of the absent facts and the errors the result came from.
  void Causes(ExplainedCauses* causes) {
    causes->missing_facts.clear();
    causes->errors.clear();
    V(plan_.root);
    Blame(plan_.root);
    auto& missing = causes->missing_facts;
    // Nodes reading the same slot share one path string: unique pointers
    // first, then by text (slots are numbered in declaration order, not by
    // path).
    if (missing_.size() <= 1) {  // the common case: nothing to order
      missing.assign(missing_.begin(), missing_.end());
      for (ErrorCode code : errors_)
        causes->errors.push_back(ErrorCodeName(code));
      return;
    }
    std::sort(missing_.begin(), missing_.end());
    missing_.erase(std::unique(missing_.begin(), missing_.end()),
                   missing_.end());
    missing.assign(missing_.begin(), missing_.end());
    std::sort(
        missing.begin(), missing.end(),
        [](const std::string* a, const std::string* b) { return *a < *b; });
    missing.erase(std::unique(missing.begin(), missing.end(),
                              [](const std::string* a, const std::string* b) {
                                return *a == *b;
                              }),
                  missing.end());
    for (ErrorCode code : errors_)
      causes->errors.push_back(ErrorCodeName(code));
  }

 private:
  static Value Unrecorded() {
    Value v;
    v.tag = kUnrecorded;
    return v;
  }

  // Node i's value, as EvalNode gives it. The first call evaluates the tree
  // once and records every node it reaches; only nodes that evaluation
  // skipped (after a short-circuit) are evaluated here on their own.
  Value V(uint32_t i) {
    if (values_[i].tag == kUnrecorded) {
      EvalNodeRecording(plan_, i, slots_, values_.data());
    }
    return values_[i];
  }

  // Text goes through a small buffer on the stack: a few bytes copied per
  // piece instead of a call into std::string for each.
  void Flush() {
    out_->append(buffer_, used_);
    used_ = 0;
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Add(std::string_view s) {
    if (ABSL_PREDICT_FALSE(s.size() > sizeof(buffer_) - used_)) {
      Flush();
      if (s.size() > sizeof(buffer_)) {
        out_->append(s.data(), s.size());
        return;
      }
    }
    std::memcpy(buffer_ + used_, s.data(), s.size());
    used_ += s.size();
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE void AddChar(char c) {
    if (ABSL_PREDICT_FALSE(used_ == sizeof(buffer_))) Flush();
    buffer_[used_++] = c;
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE void AddInt(int64_t i) {
    if (ABSL_PREDICT_FALSE(sizeof(buffer_) - used_ < 24)) Flush();
    const auto result =
        std::to_chars(buffer_ + used_, buffer_ + sizeof(buffer_), i);
    used_ = static_cast<size_t>(result.ptr - buffer_);
  }
  // AppendValue's text, with the common cases written here: ints, bools,
  // and doubles holding a small whole number (weeks_at_step = 9.0), which
  // AppendValue renders as the integer and ".0" (the shortest round-trip
  // text of such a double is its digits: below 1e4 never shorter in
  // exponent form). Everything else goes to AppendValue.
  void AddValue(const Value& v) {
    switch (v.tag) {
      case Tag::kInt:
        AddInt(v.i);
        return;
      case Tag::kBool:
        Add(v.b ? std::string_view("true") : std::string_view("false"));
        return;
      case Tag::kDouble:
        if (SmallWholeDouble(v.d)) {
          AddInt(static_cast<int64_t>(v.d));
          Add(".0");
          return;
        }
        break;
      default:
        break;
    }
    Flush();
    AppendValue(v, out_);
  }

  // Node i (which reads its slot a) shown with the slot's value.
  void Shown(uint32_t i) {
    Add(plan_.NodePath(i));
    Add(" = ");
    AddValue(slots_[plan_.nodes[i].a]);
  }

  void ConstText(const Node& n, const NodeInfo& info) {
    Flush();
    AppendConstText(plan_, n, info, out_);
  }

  // A node that shows one value, from its prepared text.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Prepared(uint32_t i, const Value& v) {
    Add(plan_.shown_before[i]);
    AddValue(v);
    Add(plan_.shown_after[i]);
  }
  bool prepared() const {
    return plan_.shown_before.size() == plan_.nodes.size();
  }
  uint8_t ShownKind(uint32_t i) const {
    if (i >= plan_.shown_kind.size()) return Program::Impl::kShowsNone;
    return plan_.shown_kind[i];
  }

  // How tightly Render(i)'s text binds.
  int Prec(uint32_t i) const {
    if (plan_.info[i].define >= 0) return kPrecShown;
    const Node& n = plan_.nodes[i];
    switch (n.op) {
      case Op::kConst:
        return kPrecAtom;
      case Op::kFact:
      case Op::kHasFact:
      case Op::kHasGroup:
      case Op::kAbsI:
      case Op::kAbsD:
      case Op::kSizeS:
      case Op::kSizeL:
      case Op::kSizeList:
      case Op::kMinI:
      case Op::kMinD:
      case Op::kMaxI:
      case Op::kMaxD:
        return kPrecShown;
      case Op::kNot:
      case Op::kNegI:
      case Op::kNegD:
        return kPrecUnary;
      case Op::kAnd:
        return kPrecAnd;
      case Op::kOr:
        return kPrecOr;
      case Op::kCond:
        return kPrecCond;
      case Op::kToDouble:
        return Prec(n.a);
      case Op::kAddI:
      case Op::kAddD:
      case Op::kSubI:
      case Op::kSubD:
        return kPrecAdd;
      case Op::kMulI:
      case Op::kMulD:
      case Op::kDivI:
      case Op::kDivD:
      case Op::kModI:
        return kPrecMul;
      default:
        return kPrecRel;  // comparisons, `in`, fused comparisons
    }
  }

  void Wrapped(uint32_t i, int min_prec) {
    if (Prec(i) >= min_prec) {
      Render(i);
      return;
    }
    AddChar('(');
    Render(i);
    AddChar(')');
  }

  void Render(uint32_t i) {
    const Node& n = plan_.nodes[i];
    const NodeInfo& info = plan_.info[i];
    if (info.define < 0) {
      RenderBody(i);
      return;
    }
    Add(plan_.define_names[info.define]);
    Add(" = ");
    if (n.op == Op::kConst) {
      AddValue(n.k);
      return;
    }
    AddValue(V(i));
    Add(" {");
    RenderBody(i);
    AddChar('}');
  }

  void Call(std::string_view name, const uint32_t* args, uint32_t count,
            uint32_t i) {
    Add(name);
    AddChar('(');
    for (uint32_t k = 0; k < count; ++k) {
      if (k > 0) Add(", ");
      Render(args[k]);
    }
    Add(") = ");
    AddValue(V(i));
  }

  void Infix(uint32_t l, std::string_view op, uint32_t r, int prec) {
    Wrapped(l, prec);
    AddChar(' ');
    Add(op);
    AddChar(' ');
    Wrapped(r, prec + 1);
  }

  void RenderBody(uint32_t i) {
    const Node& n = plan_.nodes[i];
    const NodeInfo& info = plan_.info[i];
    const uint32_t* kids = plan_.kids.data() + n.a;
    switch (n.op) {
      case Op::kConst:
        AddValue(n.k);
        return;
      case Op::kFact:
        if (prepared()) {
          Prepared(i, slots_[n.a]);
          return;
        }
        Shown(i);
        return;
      case Op::kHasFact:
      case Op::kHasGroup:
        if (prepared()) {
          Prepared(i, V(i));
          return;
        }
        Add("has(");
        Add(plan_.NodePath(i));
        Add(") = ");
        AddValue(V(i));
        return;
      case Op::kInSK:
        if (prepared()) {
          Prepared(i, slots_[n.a]);
          return;
        }
        ConstText(n, info);
        Add(" in ");
        Shown(i);
        return;
      case Op::kNot:
        AddChar('!');
        Wrapped(n.a, kPrecUnary);
        return;
      case Op::kAnd:
      case Op::kOr: {
        const bool decider = n.op == Op::kOr;
        const int prec = decider ? kPrecOr : kPrecAnd;
        bool decided = false;
        for (uint32_t k = 0; k < n.b; ++k) {
          if (k > 0) Add(decider ? " || " : " && ");
          if (decided) {
            Add(kSkipped);
            continue;
          }
          const uint8_t shown = ShownKind(kids[k]);
          if (shown != Program::Impl::kShowsNone) {
            // A leaf binds at least as tightly as a comparison: never
            // parenthesized inside && or ||.
            Prepared(kids[k], shown == Program::Impl::kShowsSlot
                                  ? slots_[plan_.nodes[kids[k]].a]
                                  : V(kids[k]));
          } else {
            Wrapped(kids[k], prec + 1);
          }
          const Value v = V(kids[k]);
          decided = v.tag == Tag::kBool && v.b == decider;
        }
        return;
      }
      case Op::kCond: {
        const Value c = V(n.a);
        const bool decided = c.tag == Tag::kBool;
        Wrapped(n.a, kPrecOr);
        Add(" ? ");
        if (decided && c.b) {
          Wrapped(n.b, kPrecOr);
        } else {
          Add(kSkipped);
        }
        Add(" : ");
        if (decided && !c.b) {
          Wrapped(n.c, kPrecCond);
        } else {
          Add(kSkipped);
        }
        return;
      }
      case Op::kNegI:
      case Op::kNegD: {
        // "-(-x)", never "--x"; the operand's first character is known only
        // once it is written, so the parenthesis is inserted afterwards.
        AddChar('-');
        Flush();
        const size_t at = out_->size();
        Render(n.a);
        Flush();
        if ((out_->size() > at && (*out_)[at] == '-') ||
            Prec(n.a) < kPrecUnary) {
          out_->insert(at, 1, '(');
          *out_ += ')';
        }
        return;
      }
      case Op::kToDouble:
        Render(n.a);
        return;
      case Op::kAbsI:
      case Op::kAbsD:
        Call("abs", &n.a, 1, i);
        return;
      case Op::kSizeS:
      case Op::kSizeL:
        Call("size", &n.a, 1, i);
        return;
      case Op::kSizeList:
        Add("size([");
        for (uint32_t k = 0; k < n.b; ++k) {
          if (k > 0) Add(", ");
          Render(kids[k]);
        }
        Add("]) = ");
        AddValue(V(i));
        return;
      case Op::kMinI:
      case Op::kMinD:
        Call("min", kids, n.b, i);
        return;
      case Op::kMaxI:
      case Op::kMaxD:
        Call("max", kids, n.b, i);
        return;
      case Op::kAddI:
      case Op::kAddD:
        Infix(n.a, "+", n.b, kPrecAdd);
        return;
      case Op::kSubI:
      case Op::kSubD:
        Infix(n.a, "-", n.b, kPrecAdd);
        return;
      case Op::kMulI:
      case Op::kMulD:
        Infix(n.a, "*", n.b, kPrecMul);
        return;
      case Op::kDivI:
      case Op::kDivD:
        Infix(n.a, "/", n.b, kPrecMul);
        return;
      case Op::kModI:
        Infix(n.a, "%", n.b, kPrecMul);
        return;
      case Op::kRelI:
      case Op::kRelD:
      case Op::kRelS:
      case Op::kRelB:
        Infix(n.a, RelText(static_cast<Rel>(n.sub)), n.b, kPrecRel);
        return;
      case Op::kIn:
        Infix(n.a, "in", n.b, kPrecRel);
        return;
      case Op::kInList:
        Wrapped(n.c, kPrecRel);
        Add(" in [");
        for (uint32_t k = 0; k < n.b; ++k) {
          if (k > 0) Add(", ");
          Render(kids[k]);
        }
        AddChar(']');
        return;
      default:
        break;
    }
    // A fused fact-constant comparison, shown in the order it was written.
    if (prepared()) {
      Prepared(i, slots_[n.a]);
      return;
    }
    const Rel rel = static_cast<Rel>(n.sub);
    if (info.flipped) {
      ConstText(n, info);
      AddChar(' ');
      Add(RelText(Unmirror(rel)));
      AddChar(' ');
      Shown(i);
      return;
    }
    Shown(i);
    AddChar(' ');
    Add(RelText(rel));
    AddChar(' ');
    ConstText(n, info);
  }

  void AddError(uint32_t code) {
    const auto e = static_cast<ErrorCode>(code);
    if (std::find(errors_.begin(), errors_.end(), e) == errors_.end()) {
      errors_.push_back(e);
    }
  }

  // Records why node i is undecided: the absent facts and the errors its
  // value came from.
  void Blame(uint32_t i) {
    const Value v = V(i);
    if (!v.undecided()) return;
    const Node& n = plan_.nodes[i];
    if (ReadsSlot(n.op) && n.op != Op::kHasFact && n.op != Op::kHasGroup) {
      const Value& s = slots_[n.a];
      if (s.tag == Tag::kAbsent) {
        missing_.push_back(&plan_.NodePath(i));
      } else {
        AddError(s.tag == Tag::kError ? s.aux : v.aux);
      }
      return;
    }
    if (n.op == Op::kCond) {
      const Value c = V(n.a);
      if (c.undecided()) {
        Blame(n.a);
      } else {
        Blame(c.b ? n.b : n.c);
      }
      return;
    }
    bool from_child = false;
    const auto blame_child = [&](uint32_t c) {
      if (V(c).undecided()) {
        from_child = true;
        Blame(c);
      }
    };
    if (n.op == Op::kAnd || n.op == Op::kOr) {
      // The common case, without building the list of children.
      const uint32_t* kids = plan_.kids.data() + n.a;
      for (uint32_t k = 0; k < n.b; ++k) blame_child(kids[k]);
    } else {
      absl::InlinedVector<uint32_t, 8> kids;
      NodeChildren(plan_, i, &kids);
      for (uint32_t c : kids) blame_child(c);
    }
    if (!from_child && v.tag == Tag::kError) AddError(v.aux);
  }

  const Program::Impl& plan_;
  const Value* slots_;
  std::string* out_;
  char buffer_[256];
  size_t used_ = 0;
  absl::InlinedVector<const std::string*, 8> missing_;
  absl::InlinedVector<ErrorCode, 2> errors_;
  absl::FixedArray<Value, 64> values_;
};

void ToStrings(const ExplainedCauses& causes,
               std::vector<std::string>* missing_facts,
               std::vector<std::string>* errors) {
  missing_facts->clear();
  errors->clear();
  for (const std::string* path : causes.missing_facts)
    missing_facts->push_back(*path);
  for (std::string_view error : causes.errors) errors->emplace_back(error);
}

}  // namespace

void PrepareExplanations(Program::Impl* plan) {
  const size_t size = plan->nodes.size();
  plan->node_paths.assign(size, nullptr);
  plan->shown_before.assign(size, std::string());
  plan->shown_after.assign(size, std::string());
  plan->shown_kind.assign(size, Program::Impl::kShowsNone);
  for (size_t i = 0; i < size; ++i) {
    const Node& n = plan->nodes[i];
    if (!ReadsSlot(n.op)) continue;
    const std::string& path = plan->SlotPath(n.a);
    plan->node_paths[i] = &path;
    const NodeInfo& info = plan->info[i];
    std::string& before = plan->shown_before[i];
    std::string& after = plan->shown_after[i];
    if (info.define < 0) {
      plan->shown_kind[i] = n.op == Op::kHasFact || n.op == Op::kHasGroup
                                ? Program::Impl::kShowsNode
                                : Program::Impl::kShowsSlot;
    }
    switch (n.op) {
      case Op::kFact:
        before = path + " = ";
        break;
      case Op::kHasFact:
      case Op::kHasGroup:
        before = "has(" + path + ") = ";
        break;
      case Op::kInSK:
        AppendConstText(*plan, n, info, &before);
        before += " in " + path + " = ";
        break;
      default: {
        const Rel rel = static_cast<Rel>(n.sub);
        if (info.flipped) {
          AppendConstText(*plan, n, info, &before);
          before += ' ';
          before.append(RelText(Unmirror(rel)));
          before += ' ';
          before += path + " = ";
        } else {
          before = path + " = ";
          after += ' ';
          after.append(RelText(rel));
          after += ' ';
          AppendConstText(*plan, n, info, &after);
        }
        break;
      }
    }
  }
}

void ExplainText(const Program::Impl& plan, const Value* slots,
                 std::string* out) {
  Explainer(plan, slots, out).Text();
}

void ExplainCauses(const Program::Impl& plan, const Value* slots,
                   std::vector<std::string>* missing_facts,
                   std::vector<std::string>* errors) {
  ExplainedCauses causes;
  Explainer(plan, slots, nullptr).Causes(&causes);
  ToStrings(causes, missing_facts, errors);
}

void ExplainParts(const Program::Impl& plan, const Value* slots,
                  std::string* text, ExplainedCauses* causes) {
  Explainer explainer(plan, slots, text);
  if (text != nullptr) explainer.Text();
  if (causes != nullptr) explainer.Causes(causes);
}

void ExplainPlan(const Program::Impl& plan, const Value* slots,
                 Explanation* out) {
  out->text.clear();
  ExplainedCauses causes;
  ExplainParts(plan, slots, &out->text, &causes);
  ToStrings(causes, &out->missing_facts, &out->errors);
}

}  // namespace stepwise::expr

// Explanations: the expression re-rendered from its plan with the value each
// fact had ("phq9.total = 13 >= 10"), plus the absent facts and errors an
// undecided result came from. Values are taken from the evaluator itself, so
// an explanation can never disagree with Evaluate.
#include <algorithm>
#include <string>
#include <vector>

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

// Renders into one string, appending: a node's binding strength is known
// from the plan without rendering it (Prec), so parentheses are decided
// before the text is written and no intermediate strings are built.
class Explainer {
 public:
  // `out` may be null when only Causes is called.
  Explainer(const Program::Impl& plan, const Value* slots, std::string* out)
      : plan_(plan), slots_(slots), out_(out) {}

  void Text() { Render(plan_.root); }

  // The paths of the absent facts and the errors the result came from.
  void Causes(std::vector<std::string>* missing_facts,
              std::vector<std::string>* errors) {
    missing_facts->clear();
    errors->clear();
    Blame(plan_.root);
    std::sort(missing_.begin(), missing_.end());
    missing_.erase(std::unique(missing_.begin(), missing_.end()),
                   missing_.end());
    for (uint32_t slot : missing_) {
      missing_facts->push_back(plan_.SlotPath(slot));
    }
    // Slots are numbered in declaration order, not by path.
    std::sort(missing_facts->begin(), missing_facts->end());
    missing_facts->erase(
        std::unique(missing_facts->begin(), missing_facts->end()),
        missing_facts->end());
    for (ErrorCode code : errors_) errors->emplace_back(ErrorCodeName(code));
  }

 private:
  Value V(uint32_t i) const { return EvalNode(plan_, i, slots_); }

  void Add(std::string_view s) { out_->append(s.data(), s.size()); }
  void AddValue(const Value& v) { AppendValue(v, out_); }

  void Shown(uint32_t slot) {
    Add(plan_.SlotPath(slot));
    Add(" = ");
    AddValue(slots_[slot]);
  }

  void ConstText(const Node& n, const NodeInfo& info) {
    if (info.const_define >= 0) {
      Add(plan_.define_names[info.const_define]);
      Add(" = ");
    }
    AddValue(n.k);
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
    *out_ += '(';
    Render(i);
    *out_ += ')';
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
    *out_ += '}';
  }

  void Call(std::string_view name, const uint32_t* args, uint32_t count,
            uint32_t i) {
    Add(name);
    *out_ += '(';
    for (uint32_t k = 0; k < count; ++k) {
      if (k > 0) Add(", ");
      Render(args[k]);
    }
    Add(") = ");
    AddValue(V(i));
  }

  void Infix(uint32_t l, std::string_view op, uint32_t r, int prec) {
    Wrapped(l, prec);
    *out_ += ' ';
    Add(op);
    *out_ += ' ';
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
        Shown(n.a);
        return;
      case Op::kHasFact:
      case Op::kHasGroup:
        Add("has(");
        Add(plan_.SlotPath(n.a));
        Add(") = ");
        AddValue(V(i));
        return;
      case Op::kInSK:
        ConstText(n, info);
        Add(" in ");
        Shown(n.a);
        return;
      case Op::kNot:
        *out_ += '!';
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
          Wrapped(kids[k], prec + 1);
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
        *out_ += '-';
        const size_t at = out_->size();
        Render(n.a);
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
        *out_ += ']';
        return;
      default:
        break;
    }
    // A fused fact-constant comparison, shown in the order it was written.
    const Rel rel = static_cast<Rel>(n.sub);
    if (info.flipped) {
      ConstText(n, info);
      *out_ += ' ';
      Add(RelText(Unmirror(rel)));
      *out_ += ' ';
      Shown(n.a);
      return;
    }
    Shown(n.a);
    *out_ += ' ';
    Add(RelText(rel));
    *out_ += ' ';
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
        missing_.push_back(n.a);
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
    for (uint32_t c : NodeChildren(plan_, i)) {
      if (V(c).undecided()) {
        from_child = true;
        Blame(c);
      }
    }
    if (!from_child && v.tag == Tag::kError) AddError(v.aux);
  }

  const Program::Impl& plan_;
  const Value* slots_;
  std::string* out_;
  absl::InlinedVector<uint32_t, 8> missing_;
  absl::InlinedVector<ErrorCode, 2> errors_;
};

}  // namespace

void ExplainText(const Program::Impl& plan, const Value* slots,
                 std::string* out) {
  Explainer(plan, slots, out).Text();
}

void ExplainCauses(const Program::Impl& plan, const Value* slots,
                   std::vector<std::string>* missing_facts,
                   std::vector<std::string>* errors) {
  Explainer(plan, slots, nullptr).Causes(missing_facts, errors);
}

void ExplainPlan(const Program::Impl& plan, const Value* slots,
                 Explanation* out) {
  out->text.clear();
  Explainer explainer(plan, slots, &out->text);
  explainer.Text();
  explainer.Causes(&out->missing_facts, &out->errors);
}

}  // namespace stepwise::expr

// Explanations: the expression re-rendered from its plan with the value each
// fact had ("phq9.total = 13 >= 10"), plus the absent facts and errors an
// undecided result came from. Values are taken from the evaluator itself, so
// an explanation can never disagree with Evaluate.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

struct Text {
  std::string s;
  int prec = kPrecAtom;
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

std::string Wrap(const Text& t, int min_prec) {
  return t.prec >= min_prec ? t.s : absl::StrCat("(", t.s, ")");
}

constexpr std::string_view kSkipped = "(...)";

class Explainer {
 public:
  Explainer(const Program::Impl& plan, const Value* slots)
      : plan_(plan), slots_(slots) {}

  void Run(Explanation* out) {
    out->text = Render(plan_.root).s;
    out->missing_facts.clear();
    out->errors.clear();
    Blame(plan_.root);
    for (uint32_t slot : missing_) {
      out->missing_facts.push_back(plan_.SlotPath(slot));
    }
    std::sort(out->missing_facts.begin(), out->missing_facts.end());
    out->missing_facts.erase(
        std::unique(out->missing_facts.begin(), out->missing_facts.end()),
        out->missing_facts.end());
    for (ErrorCode code : errors_) {
      out->errors.emplace_back(ErrorCodeName(code));
    }
  }

 private:
  Value V(uint32_t i) const { return EvalNode(plan_, i, slots_); }

  std::string Shown(uint32_t slot) const {
    return absl::StrCat(plan_.SlotPath(slot), " = ", FormatValue(slots_[slot]));
  }

  std::string ConstText(const Node& n, const NodeInfo& info) const {
    if (info.const_define >= 0) {
      return absl::StrCat(plan_.define_names[info.const_define], " = ",
                          FormatValue(n.k));
    }
    return FormatValue(n.k);
  }

  Text Render(uint32_t i) {
    const Node& n = plan_.nodes[i];
    const NodeInfo& info = plan_.info[i];
    Text t = RenderBody(i);
    if (info.define >= 0) {
      const std::string& name = plan_.define_names[info.define];
      if (n.op == Op::kConst) {
        t = {absl::StrCat(name, " = ", FormatValue(n.k)), kPrecShown};
      } else {
        t = {absl::StrCat(name, " = ", FormatValue(V(i)), " {", t.s, "}"),
             kPrecShown};
      }
    }
    return t;
  }

  Text Call(std::string_view name, const std::vector<uint32_t>& args,
            uint32_t i) {
    std::vector<std::string> parts;
    for (uint32_t a : args) parts.push_back(Render(a).s);
    return {absl::StrCat(Sv(name), "(", absl::StrJoin(parts, ", "),
                         ") = ", FormatValue(V(i))),
            kPrecShown};
  }

  Text Infix(uint32_t l, std::string_view op, uint32_t r, int prec) {
    return {absl::StrCat(Wrap(Render(l), prec), " ", Sv(op), " ",
                         Wrap(Render(r), prec + 1)),
            prec};
  }

  std::vector<uint32_t> Kids(const Node& n) const {
    return std::vector<uint32_t>(plan_.kids.begin() + n.a,
                                 plan_.kids.begin() + n.a + n.b);
  }

  Text RenderBody(uint32_t i) {
    const Node& n = plan_.nodes[i];
    const NodeInfo& info = plan_.info[i];
    switch (n.op) {
      case Op::kConst:
        return {FormatValue(n.k), kPrecAtom};
      case Op::kFact:
        return {Shown(n.a), kPrecShown};
      case Op::kHasFact:
      case Op::kHasGroup:
        return {absl::StrCat("has(", plan_.SlotPath(n.a),
                             ") = ", FormatValue(V(i))),
                kPrecShown};
      case Op::kInSK:
        return {absl::StrCat(ConstText(n, info), " in ", Shown(n.a)), kPrecRel};
      case Op::kNot:
        return {absl::StrCat("!", Wrap(Render(n.a), kPrecUnary)), kPrecUnary};
      case Op::kAnd:
      case Op::kOr: {
        const bool decider = n.op == Op::kOr;
        const int prec = decider ? kPrecOr : kPrecAnd;
        std::vector<std::string> parts;
        bool decided = false;
        for (uint32_t k : Kids(n)) {
          if (decided) {
            parts.emplace_back(kSkipped);
            continue;
          }
          parts.push_back(Wrap(Render(k), prec + 1));
          const Value v = V(k);
          decided = v.tag == Tag::kBool && v.b == decider;
        }
        return {absl::StrJoin(parts, decider ? " || " : " && "), prec};
      }
      case Op::kCond: {
        const Value c = V(n.a);
        const bool decided = c.tag == Tag::kBool;
        const std::string x =
            decided && c.b ? Wrap(Render(n.b), kPrecOr) : std::string(kSkipped);
        const std::string y = decided && !c.b ? Wrap(Render(n.c), kPrecCond)
                                              : std::string(kSkipped);
        return {absl::StrCat(Wrap(Render(n.a), kPrecOr), " ? ", x, " : ", y),
                kPrecCond};
      }
      case Op::kNegI:
      case Op::kNegD: {
        const Text operand = Render(n.a);
        const bool sign = !operand.s.empty() && operand.s[0] == '-';
        return {absl::StrCat("-", sign ? absl::StrCat("(", operand.s, ")")
                                       : Wrap(operand, kPrecUnary)),
                kPrecUnary};
      }
      case Op::kToDouble:
        return Render(n.a);
      case Op::kAbsI:
      case Op::kAbsD:
        return Call("abs", {n.a}, i);
      case Op::kSizeS:
      case Op::kSizeL:
        return Call("size", {n.a}, i);
      case Op::kSizeList: {
        std::vector<std::string> parts;
        for (uint32_t k : Kids(n)) parts.push_back(Render(k).s);
        return {absl::StrCat("size([", absl::StrJoin(parts, ", "),
                             "]) = ", FormatValue(V(i))),
                kPrecShown};
      }
      case Op::kMinI:
      case Op::kMinD:
        return Call("min", Kids(n), i);
      case Op::kMaxI:
      case Op::kMaxD:
        return Call("max", Kids(n), i);
      case Op::kAddI:
      case Op::kAddD:
        return Infix(n.a, "+", n.b, kPrecAdd);
      case Op::kSubI:
      case Op::kSubD:
        return Infix(n.a, "-", n.b, kPrecAdd);
      case Op::kMulI:
      case Op::kMulD:
        return Infix(n.a, "*", n.b, kPrecMul);
      case Op::kDivI:
      case Op::kDivD:
        return Infix(n.a, "/", n.b, kPrecMul);
      case Op::kModI:
        return Infix(n.a, "%", n.b, kPrecMul);
      case Op::kRelI:
      case Op::kRelD:
      case Op::kRelS:
      case Op::kRelB:
        return Infix(n.a, RelText(static_cast<Rel>(n.sub)), n.b, kPrecRel);
      case Op::kIn:
        return Infix(n.a, "in", n.b, kPrecRel);
      case Op::kInList: {
        std::vector<std::string> parts;
        for (uint32_t k : Kids(n)) parts.push_back(Render(k).s);
        return {absl::StrCat(Wrap(Render(n.c), kPrecRel), " in [",
                             absl::StrJoin(parts, ", "), "]"),
                kPrecRel};
      }
      default:
        break;
    }
    // A fused fact-constant comparison, shown in the order it was written.
    const Rel rel = static_cast<Rel>(n.sub);
    const std::string fact = Shown(n.a);
    const std::string constant = ConstText(n, info);
    if (info.flipped) {
      return {
          absl::StrCat(constant, " ", Sv(RelText(Unmirror(rel))), " ", fact),
          kPrecRel};
    }
    return {absl::StrCat(fact, " ", Sv(RelText(rel)), " ", constant), kPrecRel};
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
        missing_.insert(n.a);
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
  std::set<uint32_t> missing_;
  std::vector<ErrorCode> errors_;
};

}  // namespace

void ExplainPlan(const Program::Impl& plan, const Value* slots,
                 Explanation* out) {
  Explainer(plan, slots).Run(out);
}

}  // namespace stepwise::expr

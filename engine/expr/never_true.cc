#include "engine/expr/never_true.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Ints beyond 2^53 do not convert to double exactly; bounds past it are
// dropped (made infinite) so that rounding can never make a bound too tight.
constexpr double kExact = 9007199254740992.0;

// The values a numeric expression can take: [lo, hi], plus NaN when `nan`.
struct Range {
  double lo = -kInf;
  double hi = kInf;
  bool nan = false;
  bool integral = false;  // every value is a whole number
  bool IsPoint() const { return !nan && lo == hi; }
};

Range Point(double v, bool integral) {
  Range r;
  r.lo = r.hi = v;
  r.integral = integral;
  return r;
}

Range Unbounded(bool int_typed) {
  Range r;
  r.integral = int_typed;
  r.nan = !int_typed;
  return r;
}

// Applies what the static type guarantees.
Range Normalize(Range r, bool int_typed) {
  if (std::isnan(r.lo) || std::isnan(r.hi)) r = Unbounded(int_typed);
  if (int_typed) {
    r.integral = true;
    r.nan = false;
    if (r.lo < -kExact || r.lo > kExact) r.lo = -kInf;
    if (r.hi > kExact || r.hi < -kExact) r.hi = kInf;
    if (std::isfinite(r.lo)) r.lo = std::ceil(r.lo);
    if (std::isfinite(r.hi)) r.hi = std::floor(r.hi);
  }
  return r;
}

Range Negate(const Range& a) {
  Range r = a;
  r.lo = -a.hi;
  r.hi = -a.lo;
  return r;
}

// inf + -inf (and 0 * inf) give NaN: flag it and give up on the bounds.
Range Combine(double lo, double hi, const Range& a, const Range& b,
              bool nan_from_infinities) {
  Range r;
  r.nan = a.nan || b.nan || nan_from_infinities;
  if (std::isnan(lo) || std::isnan(hi)) {
    r.nan = true;
    return r;
  }
  r.lo = lo;
  r.hi = hi;
  r.integral = a.integral && b.integral;
  return r;
}

Range Add(const Range& a, const Range& b) {
  const bool infinities =
      (a.hi == kInf && b.lo == -kInf) || (a.lo == -kInf && b.hi == kInf);
  return Combine(a.lo + b.lo, a.hi + b.hi, a, b, infinities);
}

Range Multiply(const Range& a, const Range& b) {
  const double corners[] = {a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi};
  bool nan = false;
  double lo = kInf;
  double hi = -kInf;
  for (double c : corners) {
    if (std::isnan(c)) nan = true;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  // 0 * inf inside the box is NaN even when no corner is.
  const bool a_zero = a.lo <= 0 && a.hi >= 0;
  const bool b_zero = b.lo <= 0 && b.hi >= 0;
  const bool a_inf = std::isinf(a.lo) || std::isinf(a.hi);
  const bool b_inf = std::isinf(b.lo) || std::isinf(b.hi);
  if ((a_zero && b_inf) || (b_zero && a_inf)) {
    Range r;
    r.nan = true;
    return r;
  }
  if (nan) {
    Range r;
    r.nan = true;
    return r;
  }
  return Combine(lo, hi, a, b, false);
}

Range Union(const Range& a, const Range& b) {
  Range r;
  r.lo = std::min(a.lo, b.lo);
  r.hi = std::max(a.hi, b.hi);
  r.nan = a.nan || b.nan;
  r.integral = a.integral && b.integral;
  return r;
}

// A closed set of string values, or any string.
struct Domain {
  bool closed = false;
  std::vector<std::string> values;
};

bool Disjoint(const Domain& a, const Domain& b) {
  if (!a.closed || !b.closed) return false;
  for (const std::string& v : a.values) {
    if (std::find(b.values.begin(), b.values.end(), v) != b.values.end()) {
      return false;
    }
  }
  return true;
}

std::string ListValues(const Domain& d) {
  std::vector<std::string> quoted;
  for (const std::string& v : d.values) quoted.push_back(QuoteString(v));
  return absl::StrJoin(quoted, ", ");
}

struct Truth {
  bool can_true = true;
  bool can_false = true;
};

bool IsLiteral(const AstNode& n) {
  switch (n.kind) {
    case NodeKind::kInt:
    case NodeKind::kDouble:
    case NodeKind::kBool:
    case NodeKind::kString:
      return true;
    default:
      return false;
  }
}

std::string FormatNumber(double v, bool int_typed) {
  if (int_typed && std::isfinite(v)) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  return FormatValue(Value::Double(v));
}

class Analyzer {
 public:
  Analyzer(const Ast& top, std::vector<Issue>* issues)
      : top_(top), issues_(issues) {}

  void Run() {
    const Truth t = Visit(top_, top_.root);
    if (!t.can_true && !root_reported_) {
      const AstNode& root = top_.node(top_.root);
      issues_->push_back(IssueAt(top_.source, root.begin,
                                 "this condition can never be true given the "
                                 "declared ranges of its facts"));
    }
  }

 private:
  struct Side {
    const Ast* ast;
    uint32_t index;
    const AstNode& node() const { return ast->node(index); }
  };

  static std::string Name(const Side& s) {
    const AstNode& n = s.node();
    if (n.kind == NodeKind::kPath) return n.str;
    return std::string(s.ast->Text(n));
  }

  void ReportLeaf(const Ast& a, uint32_t i, const std::string& reason) {
    if (&a != &top_) return;
    if (!reported_.insert(i).second) return;
    if (i == top_.root) root_reported_ = true;
    issues_->push_back(IssueAt(top_.source, a.node(i).at,
                               absl::StrCat("can never be true: ", reason)));
  }

  Truth Visit(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    switch (n.kind) {
      case NodeKind::kBool:
        return {n.bool_value, !n.bool_value};
      case NodeKind::kPath:
        if (n.path_kind == PathKind::kDefine) {
          return Visit(n.define->ast, n.define->ast.root);
        }
        return {};
      case NodeKind::kNot: {
        const Truth t = Visit(a, n.children[0]);
        return {t.can_false, t.can_true};
      }
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        const bool is_and = n.kind == NodeKind::kAnd;
        Truth result{is_and, !is_and};
        for (uint32_t c : n.children) {
          const Truth t = Visit(a, c);
          if (is_and) {
            result.can_true &= t.can_true;
            result.can_false |= t.can_false;
          } else {
            result.can_true |= t.can_true;
            result.can_false &= t.can_false;
          }
        }
        return result;
      }
      case NodeKind::kCond: {
        const Truth c = Visit(a, n.children[0]);
        const Truth x = Visit(a, n.children[1]);
        const Truth y = Visit(a, n.children[2]);
        return {(c.can_true && x.can_true) || (c.can_false && y.can_true),
                (c.can_true && x.can_false) || (c.can_false && y.can_false)};
      }
      case NodeKind::kBinary:
        if (IsRelation(n.op)) return Relation(a, i);
        return {};
      default:
        return {};
    }
  }

  Range NumRange(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    const bool int_typed = n.type.kind == Kind::kInt;
    Range r = Unbounded(int_typed);
    switch (n.kind) {
      case NodeKind::kInt:
        r = Point(static_cast<double>(n.int_value), true);
        break;
      case NodeKind::kDouble:
        r = Point(n.double_value, false);
        break;
      case NodeKind::kPath:
        if (n.path_kind == PathKind::kDefine) {
          r = NumRange(n.define->ast, n.define->ast.root);
        } else if (n.path_kind == PathKind::kFact) {
          const FactDecl& decl = a.facts[n.fact];
          if (decl.min) r.lo = *decl.min;
          if (decl.max) r.hi = *decl.max;
          // A declared bound says the fact is a number (not NaN).
          r.nan = !int_typed && !decl.min && !decl.max;
        }
        break;
      case NodeKind::kNeg:
        r = Negate(NumRange(a, n.children[0]));
        break;
      case NodeKind::kBinary: {
        const Range x = NumRange(a, n.children[0]);
        const Range y = NumRange(a, n.children[1]);
        switch (n.op) {
          case BinaryOp::kAdd:
            r = Add(x, y);
            break;
          case BinaryOp::kSub:
            r = Add(x, Negate(y));
            break;
          case BinaryOp::kMul:
            r = Multiply(x, y);
            break;
          default:
            break;  // division and modulus: unbounded
        }
        break;
      }
      case NodeKind::kCall: {
        if (n.function == Function::kAbs) {
          const Range x = NumRange(a, n.children[0]);
          r = x;
          if (x.hi <= 0) {
            r = Negate(x);
          } else if (x.lo < 0) {
            r.lo = 0;
            r.hi = std::max(-x.lo, x.hi);
          }
        } else if (n.function == Function::kMin ||
                   n.function == Function::kMax) {
          const bool is_min = n.function == Function::kMin;
          for (size_t k = 0; k < n.children.size(); ++k) {
            const Range x = NumRange(a, n.children[k]);
            if (k == 0) {
              r = x;
              continue;
            }
            r.lo = is_min ? std::min(r.lo, x.lo) : std::max(r.lo, x.lo);
            r.hi = is_min ? std::min(r.hi, x.hi) : std::max(r.hi, x.hi);
            r.nan |= x.nan;
            r.integral &= x.integral;
          }
        } else if (n.function == Function::kSize) {
          r.lo = 0;
        }
        break;
      }
      case NodeKind::kCond: {
        const Truth c = Visit(a, n.children[0]);
        const Range x = NumRange(a, n.children[1]);
        const Range y = NumRange(a, n.children[2]);
        if (c.can_true && c.can_false) {
          r = Union(x, y);
        } else if (c.can_true) {
          r = x;
        } else if (c.can_false) {
          r = y;
        } else {
          r = Union(x, y);
        }
        break;
      }
      default:
        break;
    }
    return Normalize(r, int_typed);
  }

  Domain StringDomain(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    Domain d;
    switch (n.kind) {
      case NodeKind::kString:
        d.closed = true;
        d.values = {n.str};
        break;
      case NodeKind::kPath:
        if (n.path_kind == PathKind::kDefine) {
          return StringDomain(n.define->ast, n.define->ast.root);
        }
        if (n.path_kind == PathKind::kFact) {
          const FactDecl& decl = a.facts[n.fact];
          d.closed = !decl.allowed_values.empty();
          d.values = decl.allowed_values;
        }
        break;
      case NodeKind::kCond: {
        Visit(a, n.children[0]);
        const Domain x = StringDomain(a, n.children[1]);
        const Domain y = StringDomain(a, n.children[2]);
        if (x.closed && y.closed) {
          d = x;
          d.values.insert(d.values.end(), y.values.begin(), y.values.end());
        }
        break;
      }
      default:
        break;
    }
    return d;
  }

  // The element domain of a list(string) operand of 'in', and whether it is a
  // fact (for the message).
  Domain ListDomain(const Ast& a, uint32_t i, bool* from_fact) {
    const AstNode& n = a.node(i);
    *from_fact = false;
    if (n.kind == NodeKind::kPath && n.path_kind == PathKind::kDefine) {
      return ListDomain(n.define->ast, n.define->ast.root, from_fact);
    }
    Domain d;
    if (n.kind == NodeKind::kPath && n.path_kind == PathKind::kFact) {
      const FactDecl& decl = a.facts[n.fact];
      *from_fact = true;
      d.closed = !decl.allowed_values.empty();
      d.values = decl.allowed_values;
      return d;
    }
    if (n.kind == NodeKind::kList) {
      d.closed = true;
      for (uint32_t c : n.children) {
        const Domain e = StringDomain(a, c);
        if (!e.closed) return Domain();
        d.values.insert(d.values.end(), e.values.begin(), e.values.end());
      }
    }
    return d;
  }

  Truth Relation(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    const Side l{&a, n.children[0]};
    const Side r{&a, n.children[1]};
    std::string reason;
    Truth t;
    if (n.op == BinaryOp::kIn) {
      t = In(l, r, &reason);
    } else if (l.node().type.is_numeric()) {
      t = NumberRelation(n.op, l, r, &reason);
    } else if (l.node().type.kind == Kind::kString) {
      t = StringRelation(n.op, l, r, &reason);
    } else {
      t = BoolRelation(n.op, l, r, &reason);
    }
    if (!t.can_true) ReportLeaf(a, i, reason);
    return t;
  }

  static std::string JoinReasons(const std::vector<std::string>& parts) {
    if (parts.empty()) return "it compares two constants";
    return absl::StrJoin(parts, " and ");
  }

  // "x is at least 3" (or "always 3"), unless x is a literal.
  static void Describe(const Side& s, const Range& r, bool upper,
                       std::vector<std::string>* parts) {
    if (IsLiteral(s.node())) return;
    const bool int_typed = s.node().type.kind == Kind::kInt;
    if (r.IsPoint()) {
      parts->push_back(
          absl::StrCat(Name(s), " is always ", FormatNumber(r.lo, int_typed)));
    } else {
      parts->push_back(
          absl::StrCat(Name(s), upper ? " is at most " : " is at least ",
                       FormatNumber(upper ? r.hi : r.lo, int_typed)));
    }
  }

  static bool NotWhole(const Range& r) {
    return r.IsPoint() && std::isfinite(r.lo) && r.lo != std::floor(r.lo);
  }

  Truth NumberRelation(BinaryOp op, const Side& ls, const Side& rs,
                       std::string* reason) {
    const Range l = NumRange(*ls.ast, ls.index);
    const Range r = NumRange(*rs.ast, rs.index);
    const bool nan = l.nan || r.nan;
    const bool overlap = l.lo <= r.hi && r.lo <= l.hi;
    const bool whole_mismatch =
        (l.integral && NotWhole(r)) || (r.integral && NotWhole(l));
    const bool same_point = l.IsPoint() && r.IsPoint() && l.lo == r.lo;
    Truth t;
    std::vector<std::string> parts;
    switch (op) {
      case BinaryOp::kLt:
      case BinaryOp::kLe:
        t.can_true = op == BinaryOp::kLt ? l.lo < r.hi : l.lo <= r.hi;
        t.can_false = nan || (op == BinaryOp::kLt ? l.hi >= r.lo : l.hi > r.lo);
        Describe(ls, l, false, &parts);
        Describe(rs, r, true, &parts);
        break;
      case BinaryOp::kGt:
      case BinaryOp::kGe:
        t.can_true = op == BinaryOp::kGt ? l.hi > r.lo : l.hi >= r.lo;
        t.can_false = nan || (op == BinaryOp::kGt ? l.lo <= r.hi : l.lo < r.hi);
        Describe(ls, l, true, &parts);
        Describe(rs, r, false, &parts);
        break;
      case BinaryOp::kEq:
        t.can_true = overlap && !whole_mismatch;
        t.can_false = nan || !same_point;
        if (whole_mismatch) {
          const Side& whole = l.integral && NotWhole(r) ? ls : rs;
          parts.push_back(absl::StrCat(Name(whole), " is a whole number"));
        } else if (l.hi < r.lo) {
          Describe(ls, l, true, &parts);
          Describe(rs, r, false, &parts);
        } else {
          Describe(ls, l, false, &parts);
          Describe(rs, r, true, &parts);
        }
        break;
      case BinaryOp::kNe:
        t.can_true = nan || !same_point;
        t.can_false = overlap && !whole_mismatch;
        Describe(ls, l, false, &parts);
        Describe(rs, r, false, &parts);
        break;
      default:
        break;
    }
    *reason = JoinReasons(parts);
    return t;
  }

  Truth StringRelation(BinaryOp op, const Side& ls, const Side& rs,
                       std::string* reason) {
    const Domain l = StringDomain(*ls.ast, ls.index);
    const Domain r = StringDomain(*rs.ast, rs.index);
    if (op != BinaryOp::kEq && op != BinaryOp::kNe) return {};
    const bool disjoint = Disjoint(l, r);
    const bool same = l.closed && r.closed && l.values.size() == 1 &&
                      r.values.size() == 1 && l.values[0] == r.values[0];
    std::vector<std::string> parts;
    for (const auto* side : {&ls, &rs}) {
      const Domain& d = side == &ls ? l : r;
      if (IsLiteral(side->node()) || !d.closed) continue;
      parts.push_back(
          d.values.size() == 1
              ? absl::StrCat(Name(*side), " is always ", ListValues(d))
              : absl::StrCat(Name(*side), " is one of ", ListValues(d)));
    }
    *reason = JoinReasons(parts);
    if (op == BinaryOp::kEq) return {!disjoint, !same};
    return {!same, !disjoint};
  }

  Truth BoolRelation(BinaryOp op, const Side& ls, const Side& rs,
                     std::string* reason) {
    const Truth l = Visit(*ls.ast, ls.index);
    const Truth r = Visit(*rs.ast, rs.index);
    const bool can_equal =
        (l.can_true && r.can_true) || (l.can_false && r.can_false);
    const bool can_differ =
        (l.can_true && r.can_false) || (l.can_false && r.can_true);
    std::vector<std::string> parts;
    for (const auto* side : {&ls, &rs}) {
      const Truth& t = side == &ls ? l : r;
      if (IsLiteral(side->node()) || t.can_true == t.can_false) continue;
      parts.push_back(absl::StrCat(Name(*side), " is always ",
                                   t.can_true ? "true" : "false"));
    }
    *reason = JoinReasons(parts);
    if (op == BinaryOp::kEq) return {can_equal, can_differ};
    return {can_differ, can_equal};
  }

  Truth In(const Side& ls, const Side& rs, std::string* reason) {
    const AstNode& lhs = ls.node();
    std::vector<std::string> parts;
    if (lhs.type.is_numeric()) {
      const Range l = NumRange(*ls.ast, ls.index);
      // Only a list literal (possibly behind a define) has known elements.
      const Ast* list_ast = rs.ast;
      uint32_t list = rs.index;
      while (list_ast->node(list).kind == NodeKind::kPath &&
             list_ast->node(list).path_kind == PathKind::kDefine) {
        const DefineEntry* d = list_ast->node(list).define;
        list_ast = &d->ast;
        list = d->ast.root;
      }
      const AstNode& ln = list_ast->node(list);
      if (ln.kind != NodeKind::kList) return {};
      bool any = false;
      for (uint32_t c : ln.children) {
        const Range e = NumRange(*list_ast, c);
        const bool whole_mismatch =
            (l.integral && NotWhole(e)) || (e.integral && NotWhole(l));
        if (l.lo <= e.hi && e.lo <= l.hi && !whole_mismatch) any = true;
      }
      if (!IsLiteral(lhs)) {
        const bool int_typed = lhs.type.kind == Kind::kInt;
        parts.push_back(
            l.IsPoint() ? absl::StrCat(Name(ls), " is always ",
                                       FormatNumber(l.lo, int_typed))
                        : absl::StrCat(Name(ls), " is between ",
                                       FormatNumber(l.lo, int_typed), " and ",
                                       FormatNumber(l.hi, int_typed)));
        if (l.integral) parts.back() += " (a whole number)";
      }
      *reason = JoinReasons(parts);
      return {any, true};
    }
    if (lhs.type.kind == Kind::kString) {
      const Domain l = StringDomain(*ls.ast, ls.index);
      bool from_fact = false;
      const Domain r = ListDomain(*rs.ast, rs.index, &from_fact);
      if (!IsLiteral(lhs) && l.closed) {
        parts.push_back(absl::StrCat(Name(ls), " is one of ", ListValues(l)));
      }
      if (from_fact && r.closed) {
        parts.push_back(absl::StrCat(Name(rs), " holds only ", ListValues(r)));
      }
      *reason = JoinReasons(parts);
      return {!Disjoint(l, r), true};
    }
    return {};
  }

  const Ast& top_;
  std::vector<Issue>* issues_;
  std::set<uint32_t> reported_;
  bool root_reported_ = false;
};

}  // namespace

void ReportNeverTrue(const Ast& ast, std::vector<Issue>* issues) {
  Analyzer(ast, issues).Run();
}

}  // namespace stepwise::expr

#include "engine/expr/checker.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/expr/parser.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

struct FunctionInfo {
  std::string_view name;
  Function function;
};
constexpr FunctionInfo kFunctions[] = {{"has", Function::kHas},
                                       {"size", Function::kSize},
                                       {"min", Function::kMin},
                                       {"max", Function::kMax},
                                       {"abs", Function::kAbs}};

std::string TypeName(const Type& t) { return t.ToString(); }

bool Numeric(const Type& t) { return t.is_numeric(); }

// The type two values unify to under int -> double promotion, if any.
bool Unify(const Type& a, const Type& b, Type* out) {
  if (a == b) {
    *out = a;
    return true;
  }
  if (Numeric(a) && Numeric(b)) {
    *out = Type::Double();
    return true;
  }
  return false;
}

class Checker {
 public:
  Checker(Ast* ast, const Declarations& decls, const Defines::Impl* defines,
          const Limits& limits, std::vector<Issue>* issues)
      : ast_(ast),
        decls_(decls),
        defines_(defines),
        limits_(limits),
        issues_(issues) {}

  bool Run(bool is_define) {
    const size_t issues_before = issues_->size();
    Visit(ast_->root, /*list_may_read_facts=*/is_define);
    const AstNode& root = ast_->nodes[ast_->root];
    if (!root.bad) {
      const int max_depth = EffectiveMaxDepth(limits_);
      if (root.depth > max_depth) {
        Report(
            root.begin,
            absl::StrCat("the expression nests too deeply once its "
                         "defines are expanded (",
                         root.depth, " levels; the limit is ", max_depth, ")"));
      } else if (root.size > limits_.max_nodes) {
        Report(root.begin,
               absl::StrCat("the expression is too large once its defines "
                            "are expanded (",
                            root.size, " nodes; the limit is ",
                            limits_.max_nodes, ")"));
      }
    }
    return issues_->size() == issues_before;
  }

 private:
  AstNode& N(uint32_t i) { return ast_->nodes[i]; }

  void Report(uint32_t offset, std::string message) {
    issues_->push_back(IssueAt(ast_->source, offset, std::move(message)));
  }
  void Bad(uint32_t i, uint32_t offset, std::string message) {
    Report(offset, std::move(message));
    N(i).bad = true;
  }

  // Depth, size and fact-dependence from the children; true when a child is
  // bad (the node is then bad too, without a message of its own).
  bool Gather(uint32_t i) {
    AstNode& n = N(i);
    int depth = 0;
    size_t size = 1;
    bool bad = false;
    bool reads = false;
    for (uint32_t c : n.children) {
      const AstNode& child = N(c);
      depth = std::max(depth, child.depth);
      size += child.size;
      bad |= child.bad;
      reads |= child.reads_facts;
    }
    n.depth = depth + 1 + n.parens;
    n.size = size;
    n.reads_facts = reads;
    n.bad |= bad;
    return n.bad;
  }

  void Visit(uint32_t i, bool list_may_read_facts) {
    switch (N(i).kind) {
      case NodeKind::kInt:
        N(i).type = Type::Int();
        return;
      case NodeKind::kDouble:
        N(i).type = Type::Double();
        return;
      case NodeKind::kBool:
        N(i).type = Type::Bool();
        return;
      case NodeKind::kString:
        N(i).type = Type::String();
        return;
      case NodeKind::kPath:
        return VisitPath(i, list_may_read_facts);
      case NodeKind::kList:
        return VisitList(i, list_may_read_facts);
      case NodeKind::kCall:
        return VisitCall(i);
      case NodeKind::kNot:
      case NodeKind::kNeg:
        return VisitUnary(i);
      case NodeKind::kBinary:
        return VisitBinary(i);
      case NodeKind::kAnd:
      case NodeKind::kOr:
        return VisitLogical(i);
      case NodeKind::kCond:
        return VisitCond(i);
    }
  }

  std::vector<std::string> Candidates() const {
    std::vector<std::string> names = decls_.AllPaths();
    if (defines_ != nullptr) {
      for (const auto& [name, entry] : defines_->by_name) names.push_back(name);
    }
    return names;
  }

  std::string Unknown(std::string_view path) const {
    std::string message = absl::StrCat("unknown identifier '", Sv(path), "'");
    const std::string hint = NearestName(path, Candidates());
    if (!hint.empty())
      absl::StrAppend(&message, " (did you mean '", hint, "'?)");
    return message;
  }

  // A fact of the group to suggest: "<group>.total" when there is one.
  std::string ExampleFact(std::string_view group) const {
    const std::string total = absl::StrCat(Sv(group), ".total");
    if (decls_.FindFact(total) != nullptr) return total;
    const std::string prefix = absl::StrCat(Sv(group), ".");
    for (const std::string& path : decls_.AllPaths()) {
      if (path.size() > prefix.size() &&
          path.compare(0, prefix.size(), prefix) == 0 &&
          decls_.FindFact(path) != nullptr) {
        return path;
      }
    }
    return "";
  }

  void ResolveFact(uint32_t i, const FactDecl& decl) {
    AstNode& n = N(i);
    n.path_kind = PathKind::kFact;
    n.slot = decl.slot;
    n.type = decl.type;
    n.reads_facts = true;
    n.fact = static_cast<int>(ast_->facts.size());
    ast_->facts.push_back(decl);
  }

  void VisitPath(uint32_t i, bool list_may_read_facts) {
    AstNode& n = N(i);
    if (const FactDecl* decl = decls_.FindFact(n.str)) {
      return ResolveFact(i, *decl);
    }
    if (decls_.FindGroup(n.str).has_value()) {
      std::string message = absl::StrCat("'", n.str,
                                         "' is an instrument, not a value: use "
                                         "has(",
                                         n.str, ")");
      const std::string example = ExampleFact(n.str);
      if (!example.empty()) {
        absl::StrAppend(&message, " or one of its facts such as ", example);
      }
      return Bad(i, n.begin, std::move(message));
    }
    if (defines_ != nullptr) {
      if (const DefineEntry* define = defines_->Find(n.str)) {
        const AstNode& root = define->ast.node(define->ast.root);
        n.path_kind = PathKind::kDefine;
        n.define = define;
        n.type = define->type;
        n.reads_facts = define->reads_facts;
        // The body replaces the leaf; parentheses around the name still
        // count.
        n.depth = root.depth + n.parens;
        n.size = root.size;
        if (root.kind == NodeKind::kList && root.reads_facts &&
            !list_may_read_facts) {
          Bad(i, n.begin,
              absl::StrCat("the define '", n.str,
                           "' is a list holding facts: it can only follow "
                           "'in' or be the argument of size()"));
        }
        return;
      }
    }
    Bad(i, n.begin, Unknown(n.str));
  }

  void VisitList(uint32_t i, bool may_read_facts) {
    AstNode& n = N(i);
    if (n.children.empty()) {
      return Bad(i, n.begin,
                 "empty lists are not supported (a list needs an element to "
                 "give it a type)");
    }
    for (uint32_t c : n.children) Visit(c, /*list_may_read_facts=*/false);
    if (Gather(i)) return;
    Type elem = N(n.children[0]).type;
    for (uint32_t c : n.children) {
      const AstNode& child = N(c);
      if (child.type.kind == Kind::kList) {
        return Bad(i, child.begin, "lists of lists are not supported");
      }
      Type unified;
      if (!Unify(elem, child.type, &unified)) {
        return Bad(i, child.begin,
                   absl::StrCat("list elements must all have one type: found ",
                                TypeName(elem), " and ", TypeName(child.type)));
      }
      elem = unified;
    }
    n.type = Type::List(elem.kind);
    if (n.reads_facts && !may_read_facts) {
      Bad(i, n.begin,
          "a list holding facts can only follow 'in' or be the argument of "
          "size(); elsewhere lists must be constant");
    }
  }

  void VisitHas(uint32_t i) {
    AstNode& n = N(i);
    n.type = Type::Bool();
    n.reads_facts = true;
    n.depth = 2 + n.parens;
    n.size = 2;
    if (n.children.size() != 1) {
      return Bad(i, n.begin, "has() takes exactly one argument");
    }
    AstNode& arg = N(n.children[0]);
    if (arg.kind != NodeKind::kPath) {
      return Bad(i, arg.begin,
                 "has() takes a fact path such as has(phq9.total) or an "
                 "instrument such as has(phq9)");
    }
    if (const FactDecl* decl = decls_.FindFact(arg.str)) {
      return ResolveFact(n.children[0], *decl);
    }
    if (const auto group = decls_.FindGroup(arg.str)) {
      arg.path_kind = PathKind::kGroup;
      arg.slot = *group;
      arg.type = Type::Bool();
      arg.reads_facts = true;
      return;
    }
    if (defines_ != nullptr && defines_->Find(arg.str) != nullptr) {
      return Bad(i, arg.begin,
                 absl::StrCat("has() takes a fact path or an instrument, not "
                              "the define '",
                              arg.str, "'"));
    }
    Bad(i, arg.begin, Unknown(arg.str));
  }

  void VisitCall(uint32_t i) {
    AstNode& n = N(i);
    n.function = Function::kNone;
    for (const FunctionInfo& f : kFunctions) {
      if (n.str == f.name) n.function = f.function;
    }
    if (n.function == Function::kNone) {
      std::vector<std::string> names;
      for (const FunctionInfo& f : kFunctions) names.emplace_back(f.name);
      std::string message = absl::StrCat("unknown function '", n.str, "'");
      const std::string hint = NearestName(n.str, names);
      if (!hint.empty())
        absl::StrAppend(&message, " (did you mean '", hint, "'?)");
      return Bad(i, n.begin, std::move(message));
    }
    if (n.function == Function::kHas) return VisitHas(i);
    const std::string name = absl::StrCat(n.str, "()");
    const size_t argc = n.children.size();
    if (n.function == Function::kSize || n.function == Function::kAbs) {
      if (argc != 1) {
        return Bad(i, n.begin,
                   absl::StrCat(name, " takes exactly one argument"));
      }
    } else if (argc < 2) {
      return Bad(i, n.begin, absl::StrCat(name, " takes two or more numbers"));
    }
    for (uint32_t c : n.children) {
      Visit(c, /*list_may_read_facts=*/n.function == Function::kSize);
    }
    if (Gather(i)) return;
    if (n.function == Function::kSize) {
      const AstNode& arg = N(n.children[0]);
      if (arg.type.kind != Kind::kList && arg.type.kind != Kind::kString) {
        return Bad(i, arg.begin,
                   absl::StrCat("size() takes a list or a string, not ",
                                TypeName(arg.type)));
      }
      n.type = Type::Int();
      return;
    }
    Type result = Type::Int();
    for (uint32_t c : n.children) {
      const AstNode& arg = N(c);
      if (!Numeric(arg.type)) {
        return Bad(
            i, arg.begin,
            absl::StrCat(name, " takes numbers, not ", TypeName(arg.type)));
      }
      if (arg.type.kind == Kind::kDouble) result = Type::Double();
    }
    n.type = result;
  }

  void VisitUnary(uint32_t i) {
    Visit(N(i).children[0], false);
    if (Gather(i)) return;
    AstNode& n = N(i);
    const Type operand = N(n.children[0]).type;
    if (n.kind == NodeKind::kNot) {
      if (operand.kind != Kind::kBool) {
        return Bad(i, n.at,
                   absl::StrCat("'!' needs a bool, not ", TypeName(operand)));
      }
      n.type = Type::Bool();
      return;
    }
    if (!Numeric(operand)) {
      return Bad(i, n.at,
                 absl::StrCat("'-' needs a number, not ", TypeName(operand)));
    }
    n.type = operand;
  }

  void VisitBinary(uint32_t i) {
    const BinaryOp op = N(i).op;
    Visit(N(i).children[0], false);
    Visit(N(i).children[1], /*list_may_read_facts=*/op == BinaryOp::kIn);
    if (Gather(i)) return;
    AstNode& n = N(i);
    const Type l = N(n.children[0]).type;
    const Type r = N(n.children[1]).type;
    const std::string op_text = absl::StrCat("'", Sv(BinaryOpText(op)), "'");
    if (!IsRelation(op)) {
      if (op == BinaryOp::kMod && Numeric(l) && Numeric(r) &&
          (l.kind == Kind::kDouble || r.kind == Kind::kDouble)) {
        return Bad(i, n.at, "'%' needs ints, not double");
      }
      if (Numeric(l) && Numeric(r)) {
        n.type = l.kind == Kind::kInt && r.kind == Kind::kInt ? Type::Int()
                                                              : Type::Double();
        return;
      }
      if (op == BinaryOp::kAdd && l.kind == Kind::kString &&
          r.kind == Kind::kString) {
        return Bad(i, n.at, "joining strings with '+' is not supported");
      }
      if (op == BinaryOp::kAdd && l.kind == Kind::kList &&
          r.kind == Kind::kList) {
        return Bad(i, n.at, "joining lists with '+' is not supported");
      }
      return Bad(i, n.at,
                 absl::StrCat(op_text, " needs numbers, not ", TypeName(l),
                              " and ", TypeName(r)));
    }
    n.type = Type::Bool();
    if (op == BinaryOp::kIn) {
      if (r.kind != Kind::kList) {
        return Bad(
            i, n.at,
            absl::StrCat("'in' needs a list on its right, not ", TypeName(r)));
      }
      const Type elem{r.elem, Kind::kBool};
      Type unified;
      if (l.kind == Kind::kList || !Unify(l, elem, &unified)) {
        return Bad(i, n.at,
                   absl::StrCat("'in' cannot look for ", TypeName(l), " in ",
                                TypeName(r)));
      }
      return;
    }
    if (l.kind == Kind::kList || r.kind == Kind::kList) {
      if (l == r) {
        return Bad(i, n.at,
                   absl::StrCat("lists cannot be compared with ", op_text));
      }
      return Bad(
          i, n.at,
          absl::StrCat("cannot compare ", TypeName(l), " with ", TypeName(r)));
    }
    Type unified;
    if (!Unify(l, r, &unified)) {
      return Bad(
          i, n.at,
          absl::StrCat("cannot compare ", TypeName(l), " with ", TypeName(r)));
    }
    if (l.kind == Kind::kBool && IsOrdering(op)) {
      return Bad(i, n.at,
                 absl::StrCat("bools cannot be ordered with ", op_text,
                              ": only == and != apply to bool"));
    }
  }

  void VisitLogical(uint32_t i) {
    for (uint32_t c : N(i).children) Visit(c, false);
    if (Gather(i)) return;
    AstNode& n = N(i);
    const std::string_view op = n.kind == NodeKind::kAnd ? "&&" : "||";
    n.type = Type::Bool();
    for (uint32_t c : n.children) {
      const AstNode& child = N(c);
      if (child.type.kind != Kind::kBool) {
        Bad(i, child.begin,
            absl::StrCat("'", Sv(op), "' needs bool operands, not ",
                         TypeName(child.type)));
      }
    }
  }

  void VisitCond(uint32_t i) {
    for (uint32_t c : N(i).children) Visit(c, false);
    if (Gather(i)) return;
    AstNode& n = N(i);
    const AstNode& cond = N(n.children[0]);
    const Type a = N(n.children[1]).type;
    const Type b = N(n.children[2]).type;
    if (cond.type.kind != Kind::kBool) {
      return Bad(i, cond.begin,
                 absl::StrCat("the condition of '?:' must be bool, not ",
                              TypeName(cond.type)));
    }
    if (!Unify(a, b, &n.type)) {
      Bad(i, n.at,
          absl::StrCat("the branches of '?:' have different types: ",
                       TypeName(a), " and ", TypeName(b)));
    }
  }

  Ast* ast_;
  const Declarations& decls_;
  const Defines::Impl* defines_;
  const Limits& limits_;
  std::vector<Issue>* issues_;
};

}  // namespace

bool Check(Ast* ast, const Declarations& decls, const Defines::Impl* defines,
           const Limits& limits, bool is_define, std::vector<Issue>* issues) {
  return Checker(ast, decls, defines, limits, issues).Run(is_define);
}

}  // namespace stepwise::expr

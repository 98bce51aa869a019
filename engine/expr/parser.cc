#include "engine/expr/parser.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/expr/lexer.h"
#include "engine/expr/text.h"

namespace stepwise::expr {

std::string_view BinaryOpText(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kLt:
      return "<";
    case BinaryOp::kLe:
      return "<=";
    case BinaryOp::kGt:
      return ">";
    case BinaryOp::kGe:
      return ">=";
    case BinaryOp::kEq:
      return "==";
    case BinaryOp::kNe:
      return "!=";
    case BinaryOp::kIn:
      return "in";
  }
  return "?";
}

int EffectiveMaxDepth(const Limits& limits) {
  return std::clamp(limits.max_depth, 1, kMaxDepthCap);
}

namespace {

constexpr uint32_t kFailed = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kInt64MaxMagnitude = 9223372036854775807ULL;

class Parser {
 public:
  Parser(std::string_view text, const Limits& limits, Ast* ast,
         std::vector<Issue>* issues)
      : text_(text),
        limits_(limits),
        max_depth_(EffectiveMaxDepth(limits)),
        ast_(ast),
        issues_(issues) {}

  bool Run() {
    if (!Lex(text_, &tokens_, issues_)) return false;
    if (Peek().kind == Tok::kEnd) {
      return Fail(0, "the expression is empty");
    }
    const uint32_t root = ParseExpr();
    if (root == kFailed) return false;
    const Token& rest = Peek();
    if (rest.kind != Tok::kEnd) {
      if (rest.kind == Tok::kRParen) {
        return Fail(rest.begin, "')' has no matching '('");
      }
      return Fail(rest.begin, absl::StrCat("expected an operator, found ",
                                           DescribeToken(rest)));
    }
    ast_->root = root;
    return true;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Take() {
    const Token& t = Peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool Is(Tok kind) const { return Peek().kind == kind; }

  bool Fail(size_t offset, std::string message) {
    if (!failed_)
      issues_->push_back(IssueAt(text_, offset, std::move(message)));
    failed_ = true;
    return false;
  }
  uint32_t FailNode(size_t offset, std::string message) {
    Fail(offset, std::move(message));
    return kFailed;
  }

  uint32_t Add(AstNode node) {
    int depth = 0;
    for (uint32_t child : node.children) {
      depth = std::max(depth, ast_->nodes[child].depth);
    }
    node.depth = depth + 1;
    if (node.depth > max_depth_) {
      return FailNode(node.at,
                      absl::StrFormat("the expression nests too deeply (more "
                                      "than %d levels)",
                                      max_depth_));
    }
    ast_->nodes.push_back(std::move(node));
    return static_cast<uint32_t>(ast_->nodes.size() - 1);
  }

  // Guards the recursion itself: every recursive descent passes through
  // ParseExpr, the '?' branch or ParseUnary, each of which also adds a
  // level to the tree, so the native stack stays bounded by max_depth_.
  class Nest {
   public:
    explicit Nest(Parser* p) : p_(p) { ++p_->nesting_; }
    ~Nest() { --p_->nesting_; }
    bool TooDeep(size_t offset) {
      if (p_->nesting_ <= p_->max_depth_) return false;
      p_->Fail(offset,
               absl::StrFormat("the expression nests too deeply (more than %d "
                               "levels)",
                               p_->max_depth_));
      return true;
    }

   private:
    Parser* p_;
  };

  // expr = or ['?' or ':' expr]
  uint32_t ParseExpr() {
    Nest nest(this);
    if (nest.TooDeep(Peek().begin)) return kFailed;
    const uint32_t cond = ParseOr();
    if (cond == kFailed || !Is(Tok::kQuestion)) return cond;
    const uint32_t question = Take().begin;
    uint32_t then_branch;
    {
      Nest inner(this);
      if (inner.TooDeep(Peek().begin)) return kFailed;
      then_branch = ParseOr();
    }
    if (then_branch == kFailed) return kFailed;
    if (!Is(Tok::kColon)) {
      return FailNode(Peek().begin,
                      absl::StrCat("expected ':' to complete the '?' at "
                                   "column ",
                                   IssueAt(text_, question, "").column,
                                   ", found ", DescribeToken(Peek())));
    }
    Take();
    const uint32_t else_branch = ParseExpr();
    if (else_branch == kFailed) return kFailed;
    AstNode node;
    node.kind = NodeKind::kCond;
    node.begin = ast_->nodes[cond].begin;
    node.end = ast_->nodes[else_branch].end;
    node.at = question;
    node.children = {cond, then_branch, else_branch};
    return Add(std::move(node));
  }

  uint32_t ParseLogical(Tok op, NodeKind kind, uint32_t (Parser::*operand)()) {
    const uint32_t first = (this->*operand)();
    if (first == kFailed || !Is(op)) return first;
    AstNode node;
    node.kind = kind;
    node.at = Peek().begin;
    node.children.push_back(first);
    while (Is(op)) {
      Take();
      const uint32_t next = (this->*operand)();
      if (next == kFailed) return kFailed;
      node.children.push_back(next);
    }
    node.begin = ast_->nodes[first].begin;
    node.end = ast_->nodes[node.children.back()].end;
    return Add(std::move(node));
  }
  uint32_t ParseOr() {
    return ParseLogical(Tok::kOr, NodeKind::kOr, &Parser::ParseAnd);
  }
  uint32_t ParseAnd() {
    return ParseLogical(Tok::kAnd, NodeKind::kAnd, &Parser::ParseRelation);
  }

  static bool RelationOp(Tok t, BinaryOp* op) {
    switch (t) {
      case Tok::kLt:
        *op = BinaryOp::kLt;
        return true;
      case Tok::kLe:
        *op = BinaryOp::kLe;
        return true;
      case Tok::kGt:
        *op = BinaryOp::kGt;
        return true;
      case Tok::kGe:
        *op = BinaryOp::kGe;
        return true;
      case Tok::kEq:
        *op = BinaryOp::kEq;
        return true;
      case Tok::kNe:
        *op = BinaryOp::kNe;
        return true;
      case Tok::kIn:
        *op = BinaryOp::kIn;
        return true;
      default:
        return false;
    }
  }
  static bool AdditiveOp(Tok t, BinaryOp* op) {
    if (t == Tok::kPlus) return *op = BinaryOp::kAdd, true;
    if (t == Tok::kMinus) return *op = BinaryOp::kSub, true;
    return false;
  }
  static bool MultiplicativeOp(Tok t, BinaryOp* op) {
    if (t == Tok::kStar) return *op = BinaryOp::kMul, true;
    if (t == Tok::kSlash) return *op = BinaryOp::kDiv, true;
    if (t == Tok::kPercent) return *op = BinaryOp::kMod, true;
    return false;
  }

  // Left-associative binary levels.
  uint32_t ParseBinary(bool (*match)(Tok, BinaryOp*),
                       uint32_t (Parser::*operand)()) {
    uint32_t left = (this->*operand)();
    BinaryOp op;
    while (left != kFailed && match(Peek().kind, &op)) {
      const uint32_t at = Take().begin;
      const uint32_t right = (this->*operand)();
      if (right == kFailed) return kFailed;
      AstNode node;
      node.kind = NodeKind::kBinary;
      node.op = op;
      node.at = at;
      node.begin = ast_->nodes[left].begin;
      node.end = ast_->nodes[right].end;
      node.children = {left, right};
      left = Add(std::move(node));
    }
    return left;
  }
  uint32_t ParseRelation() {
    return ParseBinary(&RelationOp, &Parser::ParseAdditive);
  }
  uint32_t ParseAdditive() {
    return ParseBinary(&AdditiveOp, &Parser::ParseMultiplicative);
  }
  uint32_t ParseMultiplicative() {
    return ParseBinary(&MultiplicativeOp, &Parser::ParseUnary);
  }

  uint32_t ParseUnary() {
    const Token& t = Peek();
    if (t.kind == Tok::kMinus &&
        (Peek(1).kind == Tok::kInt || Peek(1).kind == Tok::kDouble)) {
      // A negative literal, so that -9223372036854775808 is an int.
      const uint32_t begin = Take().begin;
      return ParseNumber(begin, /*negative=*/true);
    }
    if (t.kind != Tok::kMinus && t.kind != Tok::kNot) return ParseMember();
    Nest nest(this);
    if (nest.TooDeep(t.begin)) return kFailed;
    const uint32_t at = Take().begin;
    const uint32_t operand = ParseUnary();
    if (operand == kFailed) return kFailed;
    AstNode node;
    node.kind = t.kind == Tok::kNot ? NodeKind::kNot : NodeKind::kNeg;
    node.at = node.begin = at;
    node.end = ast_->nodes[operand].end;
    node.children = {operand};
    return Add(std::move(node));
  }

  uint32_t ParseNumber(uint32_t begin, bool negative) {
    const Token& t = Take();
    AstNode node;
    node.begin = node.at = begin;
    node.end = t.end;
    if (t.kind == Tok::kDouble) {
      node.kind = NodeKind::kDouble;
      node.double_value = negative ? -t.double_value : t.double_value;
      return Add(std::move(node));
    }
    node.kind = NodeKind::kInt;
    const uint64_t limit = kInt64MaxMagnitude + (negative ? 1 : 0);
    if (t.magnitude_overflow || t.magnitude > limit) {
      return FailNode(
          begin,
          absl::StrCat("integer ", Sv(text_.substr(begin, t.end - begin)),
                       " is out of range (ints are 64-bit)"));
    }
    if (negative) {
      node.int_value = t.magnitude == kInt64MaxMagnitude + 1
                           ? std::numeric_limits<int64_t>::min()
                           : -static_cast<int64_t>(t.magnitude);
    } else {
      node.int_value = static_cast<int64_t>(t.magnitude);
    }
    return Add(std::move(node));
  }

  // member = primary, with the postfix forms CEL has and this subset
  // rejects.
  uint32_t ParseMember() {
    const bool bare_name = Is(Tok::kIdent);
    const uint32_t primary = ParsePrimary();
    if (primary == kFailed) return kFailed;
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kDot:
        return FailNode(t.begin,
                        "fields can only be selected from a fact path such "
                        "as phq9.total");
      case Tok::kLBracket:
        return FailNode(t.begin, "indexing is not supported");
      case Tok::kLBrace:
        return FailNode(t.begin,
                        bare_name ? "message construction is not supported"
                                  : absl::StrCat("expected an operator, found ",
                                                 DescribeToken(t)));
      case Tok::kLParen:
        return FailNode(t.begin, "only named functions can be called");
      default:
        return primary;
    }
  }

  uint32_t ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kInt:
      case Tok::kDouble:
        return ParseNumber(t.begin, /*negative=*/false);
      case Tok::kString:
      case Tok::kTrue:
      case Tok::kFalse: {
        AstNode node;
        node.kind =
            t.kind == Tok::kString ? NodeKind::kString : NodeKind::kBool;
        node.str = t.str;
        node.bool_value = t.kind == Tok::kTrue;
        node.begin = node.at = t.begin;
        node.end = t.end;
        Take();
        return Add(std::move(node));
      }
      case Tok::kLParen: {
        const uint32_t open = Take().begin;
        const uint32_t inner = ParseExpr();
        if (inner == kFailed) return kFailed;
        if (!Is(Tok::kRParen)) {
          return FailNode(Peek().begin,
                          absl::StrCat("expected ')' to close the '(' at "
                                       "column ",
                                       IssueAt(text_, open, "").column,
                                       ", found ", DescribeToken(Peek())));
        }
        // The node now spans its parentheses, so that its text reads whole;
        // a pair of parentheses is a level of nesting like any other.
        AstNode& n = ast_->nodes[inner];
        n.begin = open;
        n.end = Take().end;
        ++n.parens;
        if (++n.depth > max_depth_) {
          return FailNode(
              open, absl::StrFormat("the expression nests too deeply (more "
                                    "than %d levels)",
                                    max_depth_));
        }
        return inner;
      }
      case Tok::kLBracket:
        return ParseList();
      case Tok::kLBrace:
        return FailNode(t.begin, "maps are not supported");
      case Tok::kDot:
        return FailNode(t.begin, "a leading '.' is not supported");
      case Tok::kIdent:
        return ParseName();
      case Tok::kEnd:
        return FailNode(t.begin,
                        "the expression ends where a value is expected");
      default:
        return FailNode(t.begin, absl::StrCat("expected a value, found ",
                                              DescribeToken(t)));
    }
  }

  uint32_t ParseList() {
    AstNode node;
    node.kind = NodeKind::kList;
    node.begin = node.at = Take().begin;
    while (!Is(Tok::kRBracket)) {
      if (node.children.size() >= limits_.max_list_elements) {
        return FailNode(node.at,
                        absl::StrCat("a list literal has more than ",
                                     limits_.max_list_elements, " elements"));
      }
      const uint32_t element = ParseExpr();
      if (element == kFailed) return kFailed;
      node.children.push_back(element);
      if (Is(Tok::kComma)) {
        Take();
      } else if (!Is(Tok::kRBracket)) {
        return FailNode(Peek().begin,
                        absl::StrCat("expected ',' or ']' in the list, found ",
                                     DescribeToken(Peek())));
      }
    }
    node.end = Take().end;
    return Add(std::move(node));
  }

  static std::string MethodMessage(std::string_view name) {
    static constexpr std::string_view kMacros[] = {
        "all", "exists", "exists_one", "map", "filter"};
    for (std::string_view macro : kMacros) {
      if (name == macro) {
        return absl::StrCat("the '", Sv(name), "' macro is not supported");
      }
    }
    if (name == "size") {
      return "method calls are not supported: write size(x), not x.size()";
    }
    return absl::StrCat("method calls such as x.", Sv(name),
                        "() are not supported");
  }

  // A dotted path, or a call of a named function.
  uint32_t ParseName() {
    const Token& first = Take();
    AstNode node;
    node.begin = node.at = first.begin;
    node.end = first.end;
    node.str = first.str;
    if (Is(Tok::kLParen)) return ParseCall(std::move(node));
    node.kind = NodeKind::kPath;
    while (Is(Tok::kDot)) {
      const Token& dot = Take();
      if (!Is(Tok::kIdent)) {
        return FailNode(Peek().begin, absl::StrCat("expected a name after '.', "
                                                   "found ",
                                                   DescribeToken(Peek())));
      }
      const Token& name = Take();
      if (Is(Tok::kLParen)) return FailNode(dot.begin, MethodMessage(name.str));
      absl::StrAppend(&node.str, ".", name.str);
      node.end = name.end;
    }
    return Add(std::move(node));
  }

  uint32_t ParseCall(AstNode node) {
    node.kind = NodeKind::kCall;
    Take();  // '('
    if (!Is(Tok::kRParen)) {
      while (true) {
        const uint32_t arg = ParseExpr();
        if (arg == kFailed) return kFailed;
        node.children.push_back(arg);
        if (node.children.size() > limits_.max_list_elements) {
          return FailNode(
              node.at, absl::StrCat("a call has more than ",
                                    limits_.max_list_elements, " arguments"));
        }
        if (Is(Tok::kComma)) {
          Take();
          continue;
        }
        if (Is(Tok::kRParen)) break;
        return FailNode(
            Peek().begin,
            absl::StrCat("expected ',' or ')' in the call of ", node.str,
                         "(), found ", DescribeToken(Peek())));
      }
    }
    node.end = Take().end;
    return Add(std::move(node));
  }

  std::string_view text_;
  const Limits& limits_;
  const int max_depth_;
  Ast* ast_;
  std::vector<Issue>* issues_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  bool failed_ = false;
};

}  // namespace

bool Parse(std::string_view text, const Limits& limits, Ast* ast,
           std::vector<Issue>* issues) {
  *ast = Ast();
  ast->source = std::string(text.substr(0, limits.max_length));
  if (text.size() > limits.max_length) {
    issues->push_back(
        IssueAt(text, 0,
                absl::StrCat("the expression is ", text.size(),
                             " bytes long; the limit is ", limits.max_length)));
    return false;
  }
  const size_t bad = FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    issues->push_back(
        IssueAt(text, bad,
                absl::StrFormat("invalid UTF-8 (byte 0x%02X)",
                                static_cast<uint8_t>(text[bad]))));
    return false;
  }
  return Parser(text, limits, ast, issues).Run();
}

}  // namespace stepwise::expr

// Bounded randomized tests (fixed seeds): random token soups must never
// crash the compiler; random well-typed expressions must evaluate exactly as
// a small, obviously-direct reference interpreter of the language's
// semantics says, and Evaluate and Explain must agree; never-true rejection
// must be sound over random fact tables within the declared ranges.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/expr/program.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using testing::FactTable;
using testing::TestDeclarations;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  // Uniform enough for test generation, and the same on every platform
  // (std::uniform_int_distribution is not).
  uint64_t Below(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------
// The reference interpreter: a direct reading of the spec, over a tree the
// generator builds alongside the text it prints.

enum class T { kBool, kInt, kDouble, kString };

struct RValue {
  Tag tag = Tag::kAbsent;
  uint32_t aux = kNoSlot;  // absent: slot; error: code
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;

  static RValue Absent(uint32_t slot) {
    RValue v;
    v.aux = slot;
    return v;
  }
  static RValue Error(ErrorCode code) {
    RValue v;
    v.tag = Tag::kError;
    v.aux = static_cast<uint32_t>(code);
    return v;
  }
  static RValue Bool(bool x) {
    RValue v;
    v.tag = Tag::kBool;
    v.b = x;
    return v;
  }
  static RValue Int(int64_t x) {
    RValue v;
    v.tag = Tag::kInt;
    v.i = x;
    return v;
  }
  static RValue Double(double x) {
    RValue v;
    v.tag = Tag::kDouble;
    v.d = x;
    return v;
  }
  static RValue String(std::string x) {
    RValue v;
    v.tag = Tag::kString;
    v.s = std::move(x);
    return v;
  }
  bool undecided() const { return tag == Tag::kAbsent || tag == Tag::kError; }
  double AsDouble() const {
    return tag == Tag::kInt ? static_cast<double>(i) : d;
  }

  std::string Format() const {
    switch (tag) {
      case Tag::kBool:
        return FormatValue(Value::Bool(b));
      case Tag::kInt:
        return FormatValue(Value::Int(i));
      case Tag::kDouble:
        return FormatValue(Value::Double(d));
      case Tag::kString:
        return FormatValue(Value::String(&s));
      case Tag::kError:
        return FormatValue(Value::Error(static_cast<ErrorCode>(aux)));
      default:
        return "<absent>";
    }
  }
};

struct Node {
  enum Kind {
    kLiteral,
    kFact,
    kHas,
    kNot,
    kNeg,
    kBinary,  // op: + - * / % < <= > >= == !=
    kAnd,
    kOr,
    kCond,
    kInList,   // kids[0] in [kids[1..]]
    kInFlags,  // kids[0] in flags
    kSizeString,
    kSizeList,  // size([kids...])
    kMin,
    kMax,
    kAbs,
  };
  Kind kind = kLiteral;
  T type = T::kBool;
  std::string op;
  RValue literal;
  std::string path;
  std::vector<Node> kids;
};

class Reference {
 public:
  explicit Reference(const std::vector<RValue>& slots) : slots_(slots) {}

  RValue Eval(const Node& n) const {
    switch (n.kind) {
      case Node::kLiteral:
        return n.literal;
      case Node::kFact:
        return Fact(n);
      case Node::kHas: {
        const auto group = TestDeclarations().FindGroup(n.path);
        if (group) {
          const RValue& v = slots_[*group];
          return RValue::Bool(v.tag == Tag::kBool && v.b);
        }
        return RValue::Bool(slots_[Slot(n.path)].tag != Tag::kAbsent);
      }
      case Node::kNot: {
        const RValue v = Eval(n.kids[0]);
        return v.undecided() ? v : RValue::Bool(!v.b);
      }
      case Node::kNeg: {
        const RValue v = Eval(n.kids[0]);
        if (v.undecided()) return v;
        if (n.type == T::kDouble) return RValue::Double(-v.AsDouble());
        if (v.i == kMin) return RValue::Error(ErrorCode::kIntegerOverflow);
        return RValue::Int(-v.i);
      }
      case Node::kBinary:
        return Binary(n);
      case Node::kAnd:
      case Node::kOr: {
        const bool decider = n.kind == Node::kOr;
        std::vector<RValue> values;
        for (const Node& k : n.kids) values.push_back(Eval(k));
        for (const RValue& v : values) {
          if (v.tag == Tag::kBool && v.b == decider) return v;
        }
        for (const RValue& v : values) {
          if (v.tag == Tag::kAbsent) return v;
        }
        for (const RValue& v : values) {
          if (v.tag == Tag::kError) return v;
        }
        return RValue::Bool(!decider);
      }
      case Node::kCond: {
        const RValue c = Eval(n.kids[0]);
        if (c.undecided()) return c;
        RValue v = Eval(n.kids[c.b ? 1 : 2]);
        if (n.type == T::kDouble && v.tag == Tag::kInt)
          v = RValue::Double(v.AsDouble());
        return v;
      }
      case Node::kInList: {
        const RValue needle = Eval(n.kids[0]);
        if (needle.undecided()) return needle;
        std::vector<RValue> elems;
        for (size_t k = 1; k < n.kids.size(); ++k) {
          const RValue e = Eval(n.kids[k]);
          if (e.undecided()) return e;
          elems.push_back(e);
        }
        for (const RValue& e : elems) {
          if (Equal(needle, e)) return RValue::Bool(true);
        }
        return RValue::Bool(false);
      }
      case Node::kInFlags: {
        const RValue needle = Eval(n.kids[0]);
        if (needle.undecided()) return needle;
        const RValue& flags = slots_[Slot("flags")];
        if (flags.tag == Tag::kAbsent) return RValue::Absent(Slot("flags"));
        if (flags.tag == Tag::kError) return flags;
        for (const std::string& f : flags_) {
          if (f == needle.s) return RValue::Bool(true);
        }
        return RValue::Bool(false);
      }
      case Node::kSizeString: {
        const RValue v = Eval(n.kids[0]);
        if (v.undecided()) return v;
        int64_t count = 0;
        for (unsigned char ch : v.s) count += (ch & 0xC0) != 0x80;
        return RValue::Int(count);
      }
      case Node::kSizeList: {
        for (const Node& k : n.kids) {
          const RValue e = Eval(k);
          if (e.undecided()) return e;
        }
        return RValue::Int(static_cast<int64_t>(n.kids.size()));
      }
      case Node::kMin:
      case Node::kMax: {
        std::vector<RValue> args;
        for (const Node& k : n.kids) {
          const RValue v = Eval(k);
          if (v.undecided()) return v;
          args.push_back(v);
        }
        const bool is_min = n.kind == Node::kMin;
        if (n.type == T::kInt) {
          int64_t best = args[0].i;
          for (const RValue& a : args)
            best = is_min ? std::min(best, a.i) : std::max(best, a.i);
          return RValue::Int(best);
        }
        double best = args[0].AsDouble();
        for (const RValue& a : args) {
          const double x = a.AsDouble();
          if (std::isnan(best)) break;
          if (std::isnan(x)) {
            best = x;
          } else if (is_min ? x < best : x > best) {
            best = x;
          }
        }
        return RValue::Double(best);
      }
      case Node::kAbs: {
        const RValue v = Eval(n.kids[0]);
        if (v.undecided()) return v;
        if (n.type == T::kDouble)
          return RValue::Double(std::fabs(v.AsDouble()));
        if (v.i == kMin) return RValue::Error(ErrorCode::kIntegerOverflow);
        return RValue::Int(v.i < 0 ? -v.i : v.i);
      }
    }
    return RValue();
  }

  void set_flags(std::vector<std::string> flags) { flags_ = std::move(flags); }

  static uint32_t Slot(const std::string& path) {
    const FactDecl* d = TestDeclarations().FindFact(path);
    return d != nullptr ? d->slot : *TestDeclarations().FindGroup(path);
  }

 private:
  RValue Fact(const Node& n) const {
    const uint32_t slot = Slot(n.path);
    const RValue& v = slots_[slot];
    if (v.tag == Tag::kAbsent) return RValue::Absent(slot);
    if (v.tag == Tag::kError) return v;
    const Tag want = n.type == T::kBool     ? Tag::kBool
                     : n.type == T::kInt    ? Tag::kInt
                     : n.type == T::kDouble ? Tag::kDouble
                                            : Tag::kString;
    if (v.tag == want) return v;
    if (want == Tag::kDouble && v.tag == Tag::kInt)
      return RValue::Double(v.AsDouble());
    return RValue::Error(ErrorCode::kTypeMismatch);
  }

  static bool Equal(const RValue& a, const RValue& b) {
    if (a.tag == Tag::kString) return a.s == b.s;
    if (a.tag == Tag::kBool) return a.b == b.b;
    if (a.tag == Tag::kInt && b.tag == Tag::kInt) return a.i == b.i;
    return a.AsDouble() == b.AsDouble();
  }

  RValue Binary(const Node& n) const {
    const RValue l = Eval(n.kids[0]);
    const RValue r = Eval(n.kids[1]);
    if (l.undecided()) return l;
    if (r.undecided()) return r;
    const std::string& op = n.op;
    if (op == "<" || op == "<=" || op == ">" || op == ">=" || op == "==" ||
        op == "!=") {
      int cmp;  // -2: unordered
      if (l.tag == Tag::kString) {
        cmp = l.s < r.s ? -1 : l.s == r.s ? 0 : 1;
      } else if (l.tag == Tag::kBool) {
        cmp = l.b == r.b ? 0 : 1;
      } else if (l.tag == Tag::kInt && r.tag == Tag::kInt) {
        cmp = l.i < r.i ? -1 : l.i == r.i ? 0 : 1;
      } else {
        const double x = l.AsDouble();
        const double y = r.AsDouble();
        cmp = x < y ? -1 : x == y ? 0 : x > y ? 1 : -2;
      }
      if (op == "==") return RValue::Bool(cmp == 0);
      if (op == "!=") return RValue::Bool(cmp != 0);
      if (op == "<") return RValue::Bool(cmp == -1);
      if (op == "<=") return RValue::Bool(cmp == -1 || cmp == 0);
      if (op == ">") return RValue::Bool(cmp == 1);
      return RValue::Bool(cmp == 1 || cmp == 0);
    }
    if (n.type == T::kDouble) {
      const double x = l.AsDouble();
      const double y = r.AsDouble();
      if (op == "+") return RValue::Double(x + y);
      if (op == "-") return RValue::Double(x - y);
      if (op == "*") return RValue::Double(x * y);
      return RValue::Double(x / y);
    }
    int64_t out = 0;
    if (op == "+") {
      if (__builtin_add_overflow(l.i, r.i, &out))
        return RValue::Error(ErrorCode::kIntegerOverflow);
      return RValue::Int(out);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(l.i, r.i, &out))
        return RValue::Error(ErrorCode::kIntegerOverflow);
      return RValue::Int(out);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(l.i, r.i, &out))
        return RValue::Error(ErrorCode::kIntegerOverflow);
      return RValue::Int(out);
    }
    if (r.i == 0) {
      return RValue::Error(op == "/" ? ErrorCode::kDivisionByZero
                                     : ErrorCode::kModulusByZero);
    }
    if (l.i == kMin && r.i == -1)
      return RValue::Error(ErrorCode::kIntegerOverflow);
    return RValue::Int(op == "/" ? l.i / r.i : l.i % r.i);
  }

  const std::vector<RValue>& slots_;
  std::vector<std::string> flags_;
};

// ---------------------------------------------------------------------------
// The generator: a random well-typed expression, as text and as a tree.

struct Expr {
  std::string text;
  Node node;
};

class Generator {
 public:
  explicit Generator(Random* random) : r_(*random) {}

  Expr Gen(T type, int depth) {
    if (depth <= 0 || r_.OneIn(4)) return Leaf(type);
    switch (type) {
      case T::kBool:
        return GenBool(depth);
      case T::kInt:
        return GenInt(depth);
      case T::kDouble:
        return GenDouble(depth);
      case T::kString:
        return r_.OneIn(2) ? Leaf(type) : Cond(type, depth);
    }
    return Leaf(type);
  }

 private:
  static Expr Make(std::string text, Node node) {
    return {std::move(text), std::move(node)};
  }

  Expr Literal(RValue v, T type, std::string text) {
    Node n;
    n.kind = Node::kLiteral;
    n.type = type;
    n.literal = std::move(v);
    return Make(std::move(text), std::move(n));
  }

  Expr FactLeaf(const std::string& path, T type) {
    Node n;
    n.kind = Node::kFact;
    n.type = type;
    n.path = path;
    return Make(std::string(path), std::move(n));
  }

  Expr Leaf(T type) {
    switch (type) {
      case T::kBool: {
        switch (r_.Below(5)) {
          case 0:
            return r_.OneIn(2) ? Literal(RValue::Bool(true), type, "true")
                               : Literal(RValue::Bool(false), type, "false");
          case 1:
            return FactLeaf(r_.OneIn(2) ? "b" : "c", type);
          case 2: {
            Node n;
            n.kind = Node::kHas;
            n.type = type;
            n.path = r_.Pick(
                std::vector<std::string>{"n", "d", "s", "phq9", "flags"});
            std::string text = absl::StrCat("has(", n.path, ")");
            return Make(std::move(text), std::move(n));
          }
          default:
            return Compare(1);
        }
      }
      case T::kInt: {
        if (r_.OneIn(2)) {
          return FactLeaf(
              r_.Pick(std::vector<std::string>{"n", "m", "phq9.total"}), type);
        }
        const int64_t v = r_.Pick(std::vector<int64_t>{
            0, 1, -1, 2, 3, 7, 10, 27, -5, kMax, kMin, 1000000});
        return Literal(RValue::Int(v), type, absl::StrCat(v));
      }
      case T::kDouble: {
        if (r_.OneIn(2)) {
          return FactLeaf(
              r_.Pick(std::vector<std::string>{"d", "e", "weeks_at_step"}),
              type);
        }
        const double v = r_.Pick(std::vector<double>{0.0, -0.0, 0.5, -2.5, 9.0,
                                                     1e308, 6.0, -0.25, 26.5});
        return Literal(RValue::Double(v), type, FormatValue(Value::Double(v)));
      }
      case T::kString: {
        if (r_.OneIn(2)) return FactLeaf(r_.OneIn(2) ? "s" : "t", type);
        const std::string v =
            r_.Pick(std::vector<std::string>{"", "a", "b", "mild", "red_flag"});
        return Literal(RValue::String(v), type, absl::StrCat("'", v, "'"));
      }
    }
    return Literal(RValue::Bool(true), T::kBool, "true");
  }

  T Numeric() { return r_.OneIn(2) ? T::kInt : T::kDouble; }

  Expr Compare(int depth) {
    static const std::vector<std::string> kOps = {"<",  "<=", ">",
                                                  ">=", "==", "!="};
    Node n;
    n.kind = Node::kBinary;
    n.type = T::kBool;
    n.op = r_.Pick(kOps);
    Expr l;
    Expr r;
    switch (r_.Below(4)) {
      case 0:
        l = Gen(T::kString, depth - 1);
        r = Gen(T::kString, depth - 1);
        break;
      case 1:
        if (n.op != "==" && n.op != "!=") n.op = "==";
        l = Gen(T::kBool, depth - 1);
        r = Gen(T::kBool, depth - 1);
        break;
      default:
        l = Gen(Numeric(), depth - 1);
        r = Gen(Numeric(), depth - 1);
        break;
    }
    const std::string text =
        absl::StrCat("(", l.text, " ", n.op, " ", r.text, ")");
    n.kids = {std::move(l.node), std::move(r.node)};
    return Make(text, std::move(n));
  }

  Expr Cond(T type, int depth) {
    Expr c = Gen(T::kBool, depth - 1);
    T a_type = type;
    T b_type = type;
    if (type == T::kDouble) {
      a_type = Numeric();
      b_type = a_type == T::kInt ? T::kDouble : Numeric();
    }
    Expr a = Gen(a_type, depth - 1);
    Expr b = Gen(b_type, depth - 1);
    Node n;
    n.kind = Node::kCond;
    n.type = type;
    const std::string text =
        absl::StrCat("(", c.text, " ? ", a.text, " : ", b.text, ")");
    n.kids = {std::move(c.node), std::move(a.node), std::move(b.node)};
    return Make(text, std::move(n));
  }

  Expr Nary(Node::Kind kind, T type, const std::string& name,
            std::vector<T> types, int depth) {
    Node n;
    n.kind = kind;
    n.type = type;
    std::vector<std::string> parts;
    for (T t : types) {
      Expr e = Gen(t, depth - 1);
      parts.push_back(e.text);
      n.kids.push_back(std::move(e.node));
    }
    std::string text = absl::StrCat(name, "(", absl::StrJoin(parts, ", "), ")");
    return Make(std::move(text), std::move(n));
  }

  Expr Arithmetic(T type, int depth, bool allow_mod) {
    static const std::vector<std::string> kOps = {"+", "-", "*", "/"};
    Node n;
    n.kind = Node::kBinary;
    n.type = type;
    n.op = allow_mod && r_.OneIn(5) ? "%" : r_.Pick(kOps);
    T lt = type;
    T rt = type;
    if (type == T::kDouble) {
      lt = Numeric();
      rt = lt == T::kInt ? T::kDouble : Numeric();
      if (r_.OneIn(2)) std::swap(lt, rt);
    }
    Expr l = Gen(lt, depth - 1);
    Expr r = Gen(rt, depth - 1);
    const std::string text =
        absl::StrCat("(", l.text, " ", n.op, " ", r.text, ")");
    n.kids = {std::move(l.node), std::move(r.node)};
    return Make(text, std::move(n));
  }

  Expr Unary(Node::Kind kind, T type, const std::string& op, T operand,
             int depth) {
    Expr e = Gen(operand, depth - 1);
    Node n;
    n.kind = kind;
    n.type = type;
    const std::string text = absl::StrCat(op, "(", e.text, ")");
    n.kids = {std::move(e.node)};
    return Make(text, std::move(n));
  }

  std::vector<T> Args(T result, size_t count) {
    std::vector<T> types;
    for (size_t i = 0; i < count; ++i)
      types.push_back(result == T::kInt ? T::kInt : Numeric());
    if (result == T::kDouble) types[r_.Below(count)] = T::kDouble;
    return types;
  }

  Expr GenInt(int depth) {
    switch (r_.Below(7)) {
      case 0:
      case 1:
        return Arithmetic(T::kInt, depth, true);
      case 2:
        return Unary(Node::kNeg, T::kInt, "-", T::kInt, depth);
      case 3:
        return Unary(Node::kAbs, T::kInt, "abs", T::kInt, depth);
      case 4:
        if (r_.OneIn(2))
          return Nary(Node::kMin, T::kInt, "min",
                      Args(T::kInt, 2 + r_.Below(2)), depth);
        return Nary(Node::kMax, T::kInt, "max", Args(T::kInt, 2 + r_.Below(2)),
                    depth);
      case 5: {
        if (r_.OneIn(2))
          return Unary(Node::kSizeString, T::kInt, "size", T::kString, depth);
        Node n;
        n.kind = Node::kSizeList;
        n.type = T::kInt;
        const T elem = r_.Pick(std::vector<T>{T::kInt, T::kString, T::kBool});
        std::vector<std::string> parts;
        const size_t count = 1 + r_.Below(3);
        for (size_t i = 0; i < count; ++i) {
          Expr e = Gen(elem, depth - 1);
          parts.push_back(e.text);
          n.kids.push_back(std::move(e.node));
        }
        std::string text =
            absl::StrCat("size([", absl::StrJoin(parts, ", "), "])");
        return Make(std::move(text), std::move(n));
      }
      default:
        return Cond(T::kInt, depth);
    }
  }

  Expr GenDouble(int depth) {
    switch (r_.Below(6)) {
      case 0:
      case 1:
        return Arithmetic(T::kDouble, depth, false);
      case 2:
        return Unary(Node::kNeg, T::kDouble, "-", T::kDouble, depth);
      case 3:
        return Unary(Node::kAbs, T::kDouble, "abs", T::kDouble, depth);
      case 4:
        if (r_.OneIn(2))
          return Nary(Node::kMin, T::kDouble, "min",
                      Args(T::kDouble, 2 + r_.Below(2)), depth);
        return Nary(Node::kMax, T::kDouble, "max",
                    Args(T::kDouble, 2 + r_.Below(2)), depth);
      default:
        return Cond(T::kDouble, depth);
    }
  }

  Expr GenBool(int depth) {
    switch (r_.Below(8)) {
      case 0:
        return Unary(Node::kNot, T::kBool, "!", T::kBool, depth);
      case 1:
      case 2: {
        Node n;
        n.kind = r_.OneIn(2) ? Node::kAnd : Node::kOr;
        n.type = T::kBool;
        const char* op = n.kind == Node::kAnd ? " && " : " || ";
        std::vector<std::string> parts;
        const size_t count = 2 + r_.Below(3);
        for (size_t i = 0; i < count; ++i) {
          Expr e = Gen(T::kBool, depth - 1);
          parts.push_back(e.text);
          n.kids.push_back(std::move(e.node));
        }
        std::string text = absl::StrCat("(", absl::StrJoin(parts, op), ")");
        return Make(std::move(text), std::move(n));
      }
      case 3:
        return Cond(T::kBool, depth);
      case 4: {
        // needle in [elements]: numbers (mixed) or strings.
        Node n;
        n.kind = Node::kInList;
        n.type = T::kBool;
        const bool strings = r_.OneIn(2);
        Expr needle = Gen(strings ? T::kString : Numeric(), depth - 1);
        n.kids.push_back(std::move(needle.node));
        std::vector<std::string> parts;
        const size_t count = 1 + r_.Below(3);
        for (size_t i = 0; i < count; ++i) {
          Expr e = Gen(strings ? T::kString : Numeric(), depth - 1);
          parts.push_back(e.text);
          n.kids.push_back(std::move(e.node));
        }
        std::string text = absl::StrCat("(", needle.text, " in [",
                                        absl::StrJoin(parts, ", "), "])");
        return Make(std::move(text), std::move(n));
      }
      case 5: {
        Expr needle = Gen(T::kString, depth - 1);
        Node n;
        n.kind = Node::kInFlags;
        n.type = T::kBool;
        const std::string text = absl::StrCat("(", needle.text, " in flags)");
        n.kids = {std::move(needle.node)};
        return Make(text, std::move(n));
      }
      default:
        return Compare(depth);
    }
  }

  Random& r_;
};

// Random fact values, sometimes absent, sometimes errors, sometimes of a
// type the declaration does not promise.
struct RandomTable {
  FactTable table;
  std::vector<RValue> values;
  std::vector<std::string> flags;

  explicit RandomTable(Random& r)
      : values(TestDeclarations().slot_count(), RValue::Absent(kNoSlot)) {
    const auto maybe = [&](const std::string& path, auto make) {
      const uint32_t slot = Reference::Slot(path);
      switch (r.Below(10)) {
        case 0:
        case 1:
          return;  // absent
        case 2:
          table.Set(path, "1 / 0");
          values[slot] = RValue::Error(ErrorCode::kDivisionByZero);
          return;
        default: {
          auto [literal, value] = make();
          table.Set(path, literal);
          values[slot] = value;
        }
      }
    };
    const auto int_value = [&] {
      const int64_t v = r.Pick(
          std::vector<int64_t>{0, 1, -1, 2, 3, 13, 27, kMax, kMin, -100});
      return std::make_pair(absl::StrCat(v), RValue::Int(v));
    };
    const auto double_value = [&] {
      if (r.OneIn(8)) {  // an int in a double slot: promoted on read
        return std::make_pair(std::string("3"), RValue::Int(3));
      }
      const double v = r.Pick(std::vector<double>{
          0.0, -0.0, 0.5, -2.5, 9.0, 1e308, kInf, -kInf, std::nan("")});
      std::string literal = FormatValue(Value::Double(v));
      if (std::isinf(v)) literal = v > 0 ? "1.0 / 0.0" : "-1.0 / 0.0";
      if (std::isnan(v)) literal = "0.0 / 0.0";
      return std::make_pair(literal, RValue::Double(v));
    };
    const auto string_value = [&] {
      if (r.OneIn(10))
        return std::make_pair(std::string("1"), RValue::Int(1));  // wrong type
      const std::string v = r.Pick(std::vector<std::string>{
          "", "a", "b", "mild", "red_flag", "h\xC3\xA9"});
      return std::make_pair(absl::StrCat("'", v, "'"), RValue::String(v));
    };
    const auto bool_value = [&] {
      const bool v = r.OneIn(2);
      return std::make_pair(std::string(v ? "true" : "false"), RValue::Bool(v));
    };
    for (const char* p : {"n", "m", "phq9.total"}) maybe(p, int_value);
    for (const char* p : {"d", "e", "weeks_at_step"}) maybe(p, double_value);
    for (const char* p : {"s", "t"}) maybe(p, string_value);
    for (const char* p : {"b", "c", "phq9"}) maybe(p, bool_value);
    maybe("flags", [&] {
      std::vector<std::string> quoted;
      for (const char* f : {"red_flag", "a", "mild"}) {
        if (r.OneIn(2)) {
          flags.push_back(f);
          quoted.push_back(absl::StrCat("'", f, "'"));
        }
      }
      if (quoted.empty()) {
        flags.push_back("b");
        quoted.push_back("'b'");
      }
      RValue list;
      list.tag = Tag::kList;
      return std::make_pair(absl::StrCat("[", absl::StrJoin(quoted, ", "), "]"),
                            list);
    });
    if (values[Reference::Slot("flags")].tag != Tag::kList) flags.clear();
  }
};

bool SameValue(const Value& v, const RValue& want) {
  if (v.tag != want.tag) return false;
  if (v.tag == Tag::kAbsent || v.tag == Tag::kError) return v.aux == want.aux;
  return FormatValue(v) == want.Format();
}

TEST(RobustnessTest, WellTypedExpressionsMatchTheReference) {
  Random r(20261121);
  int compiled = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    Generator gen(&r);
    const T type = r.Pick(
        std::vector<T>{T::kBool, T::kBool, T::kInt, T::kDouble, T::kString});
    const Expr expr = gen.Gen(type, 1 + static_cast<int>(r.Below(5)));
    auto result = Compile(expr.text, TestDeclarations(), CompileOptions());
    ASSERT_TRUE(result.ok());
    ASSERT_THAT(result->issues, ::testing::IsEmpty())
        << expr.text << "\n"
        << testing::FormatIssue(result->issues[0]);
    ++compiled;
    for (int t = 0; t < 8; ++t) {
      RandomTable table(r);
      Reference reference(table.values);
      reference.set_flags(table.flags);
      const RValue want = reference.Eval(expr.node);
      const Value got = result->program->Evaluate(table.table.slots());
      ASSERT_TRUE(SameValue(got, want))
          << expr.text << "\n got " << FormatValue(got) << " (aux " << got.aux
          << ")\nwant " << want.Format() << " (aux " << want.aux << ")";
      Explanation explanation;
      const Value explained =
          result->program->Explain(table.table.slots(), &explanation);
      ASSERT_EQ(FormatValue(explained), FormatValue(got)) << expr.text;
      ASSERT_EQ(explained.aux, got.aux) << expr.text;
      ASSERT_FALSE(explanation.text.empty());
      if (got.tag == Tag::kAbsent) {
        ASSERT_THAT(explanation.missing_facts,
                    ::testing::Contains(TestDeclarations().SlotName(got.aux)))
            << expr.text << "\n"
            << explanation.text;
      }
      if (!got.undecided()) {
        ASSERT_THAT(explanation.missing_facts, ::testing::IsEmpty());
        ASSERT_THAT(explanation.errors, ::testing::IsEmpty());
      }
    }
  }
  EXPECT_EQ(compiled, 3000);
}

// The evaluator's fast path: chains of facts compared with constants, the
// constants drawn near the facts' values so that every boundary is hit.
TEST(RobustnessTest, FactConstantChainsMatchTheReference) {
  Random r(314159);
  static const std::vector<std::string> kOps = {"<",  "<=", ">",
                                                ">=", "==", "!="};
  static const std::vector<int64_t> kInts = {kMin, kMin + 1, -2,       -1,  0,
                                             1,    2,        kMax - 1, kMax};
  static const std::vector<double> kDoubles = {-kInf,  -1e308, -2.5,  -0.0, 0.0,
                                               5e-324, 2.5,    1e308, kInf};
  for (int iteration = 0; iteration < 2000; ++iteration) {
    // The facts' values.
    FactTable table;
    std::vector<RValue> values(TestDeclarations().slot_count(),
                               RValue::Absent(kNoSlot));
    const int64_t n = r.Pick(kInts);
    const double d = r.OneIn(8) ? std::nan("") : r.Pick(kDoubles);
    const auto literal = [](double v) {
      if (std::isnan(v)) return std::string("(0.0 / 0.0)");
      if (std::isinf(v))
        return std::string(v > 0 ? "(1.0 / 0.0)" : "(-1.0 / 0.0)");
      return FormatValue(Value::Double(v));
    };
    if (!r.OneIn(6)) {
      table.Set("n", absl::StrCat(n));
      values[Reference::Slot("n")] = RValue::Int(n);
    }
    if (!r.OneIn(6)) {
      table.Set("d", literal(d));
      values[Reference::Slot("d")] = RValue::Double(d);
    }
    // A chain of comparisons, constants on either side.
    const bool is_or = r.OneIn(2);
    Node chain;
    chain.kind = is_or ? Node::kOr : Node::kAnd;
    std::vector<std::string> parts;
    const size_t count = 1 + r.Below(4);
    for (size_t i = 0; i < count; ++i) {
      Node cmp;
      cmp.kind = Node::kBinary;
      cmp.type = T::kBool;
      cmp.op = r.Pick(kOps);
      Node fact;
      fact.kind = Node::kFact;
      Node constant;
      constant.kind = Node::kLiteral;
      std::string constant_text;
      if (r.OneIn(2)) {
        fact.path = "n";
        fact.type = T::kInt;
        if (r.OneIn(3)) {
          const double c =
              r.OneIn(2) ? static_cast<double>(n) + 0.5 : r.Pick(kDoubles);
          constant.type = T::kDouble;
          constant.literal = RValue::Double(c);
          constant_text = literal(c);
        } else {
          // n - 1, n or n + 1 (n itself where that would overflow).
          int64_t c = r.Pick(kInts);
          if (r.OneIn(2) && __builtin_add_overflow(
                                n, static_cast<int64_t>(r.Below(3)) - 1, &c)) {
            c = n;
          }
          constant.type = T::kInt;
          constant.literal = RValue::Int(c);
          constant_text = absl::StrCat(c);
        }
      } else {
        fact.path = "d";
        fact.type = T::kDouble;
        if (r.OneIn(3)) {
          const int64_t c = r.Pick(kInts);
          constant.type = T::kInt;
          constant.literal = RValue::Int(c);
          constant_text = absl::StrCat(c);
        } else {
          const double c = r.OneIn(2) ? d : r.Pick(kDoubles);
          constant.type = T::kDouble;
          constant.literal = RValue::Double(c);
          constant_text = literal(c);
        }
      }
      if (r.OneIn(2)) {
        parts.push_back(
            absl::StrCat(fact.path, " ", cmp.op, " ", constant_text));
        cmp.kids = {fact, constant};
      } else {
        parts.push_back(
            absl::StrCat(constant_text, " ", cmp.op, " ", fact.path));
        cmp.kids = {constant, fact};
      }
      chain.kids.push_back(std::move(cmp));
    }
    const std::string text = absl::StrJoin(parts, is_or ? " || " : " && ");
    auto program = testing::MustCompile(text);
    ASSERT_NE(program, nullptr) << text;
    Reference reference(values);
    const RValue want = reference.Eval(chain);
    const Value got = program->Evaluate(table.slots());
    ASSERT_TRUE(SameValue(got, want))
        << text << " with n=" << n << ", d=" << d << "\n got "
        << FormatValue(got) << "\nwant " << want.Format();
    Explanation explanation;
    ASSERT_EQ(FormatValue(program->Explain(table.slots(), &explanation)),
              FormatValue(got));
  }
}

TEST(RobustnessTest, TokenSoupsNeverCrash) {
  static const std::vector<std::string> kTokens = {"(",
                                                   ")",
                                                   "[",
                                                   "]",
                                                   "{",
                                                   "}",
                                                   ",",
                                                   ".",
                                                   "?",
                                                   ":",
                                                   "+",
                                                   "-",
                                                   "*",
                                                   "/",
                                                   "%",
                                                   "!",
                                                   "<",
                                                   "<=",
                                                   ">",
                                                   ">=",
                                                   "==",
                                                   "!=",
                                                   "&&",
                                                   "||",
                                                   "in",
                                                   "has",
                                                   "size",
                                                   "min",
                                                   "max",
                                                   "abs",
                                                   "phq9",
                                                   "phq9.total",
                                                   "total",
                                                   "n",
                                                   "m",
                                                   "d",
                                                   "s",
                                                   "b",
                                                   "flags",
                                                   "previous.phq9",
                                                   "true",
                                                   "false",
                                                   "null",
                                                   "0",
                                                   "1",
                                                   "-1",
                                                   "2.5",
                                                   ".5",
                                                   "1e3",
                                                   "0x1F",
                                                   "9223372036854775807",
                                                   "9223372036854775808",
                                                   "'a'",
                                                   "\"b\"",
                                                   "'",
                                                   "\"",
                                                   "\\",
                                                   "u",
                                                   "=",
                                                   "&",
                                                   "|",
                                                   "#",
                                                   " ",
                                                   "\n",
                                                   "\t",
                                                   std::string(1, '\0'),
                                                   "\xFF",
                                                   "\xC3\xA9",
                                                   "//",
                                                   "if",
                                                   "1u",
                                                   "b\"x\"",
                                                   "r'x'",
                                                   "'''"};
  Random r(7);
  int programs = 0;
  for (int iteration = 0; iteration < 5000; ++iteration) {
    std::string text;
    const size_t count = r.Below(24);
    for (size_t i = 0; i < count; ++i) {
      text += r.Pick(kTokens);
      if (r.OneIn(2)) text += ' ';
    }
    CompileOptions options;
    options.reject_never_true = r.OneIn(2);
    if (r.OneIn(3)) options.expected = Type::Bool();
    options.limits.max_depth = static_cast<int>(1 + r.Below(80));
    auto result = Compile(text, TestDeclarations(), options);
    ASSERT_TRUE(result.ok());
    if (result->program == nullptr) {
      ASSERT_FALSE(result->issues.empty()) << text;
      for (const Issue& issue : result->issues) {
        ASSERT_GE(issue.line, 1);
        ASSERT_GE(issue.column, 1);
        ASSERT_FALSE(issue.message.empty());
      }
      continue;
    }
    ASSERT_TRUE(result->issues.empty());
    ++programs;
    RandomTable table(r);
    Explanation explanation;
    const Value got = result->program->Evaluate(table.table.slots());
    const Value explained =
        result->program->Explain(table.table.slots(), &explanation);
    ASSERT_EQ(FormatValue(got), FormatValue(explained)) << text;
  }
  EXPECT_GT(programs, 20);
}

// Never-true rejection is sound: whatever it rejects, no fact table within
// the declared ranges makes true.
TEST(RobustnessTest, NeverTrueIsSound) {
  struct RangedFact {
    std::string path;
    std::vector<std::string> values;  // literals within the declaration
  };
  const std::vector<RangedFact> facts = {
      {"phq9.total", {"0", "1", "9", "10", "26", "27"}},
      {"gad7.total", {"0", "7", "20", "21"}},
      {"cssrs.q6", {"0", "1", "2"}},
      {"current_step", {"1", "2", "3", "4"}},
      {"weeks_at_step", {"0.0", "0.5", "6.0", "8.0", "1e308", "1.0 / 0.0"}},
      {"phq9.pct_change", {"-1.0", "-0.5", "0.0", "2.5", "1.0 / 0.0"}},
  };
  const std::vector<std::string> severities = {
      "'none'", "'mild'", "'moderate'", "'moderately severe'", "'severe'"};
  const std::vector<std::string> constants = {
      "0",  "1",  "2",   "4",    "5",    "21",   "26",   "27",   "28",
      "48", "-1", "0.5", "26.5", "27.0", "-1.0", "-0.5", "1e308"};
  Random r(99);
  const auto term = [&]() -> std::string {
    switch (r.Below(6)) {
      case 0:
        return r.Pick(constants);
      case 1:
        return absl::StrCat("(", r.Pick(facts).path, " + ", r.Pick(facts).path,
                            ")");
      case 2:
        return absl::StrCat("(", r.Pick(facts).path, " * ", r.Pick(constants),
                            ")");
      case 3:
        return absl::StrCat("max(", r.Pick(facts).path, ", ", r.Pick(constants),
                            ")");
      case 4:
        return absl::StrCat("-", r.Pick(facts).path);
      default:
        return r.Pick(facts).path;
    }
  };
  const auto comparison = [&]() -> std::string {
    static const std::vector<std::string> kOps = {"<",  "<=", ">",
                                                  ">=", "==", "!="};
    switch (r.Below(8)) {
      case 0:
        return absl::StrCat("phq9.severity ", r.OneIn(2) ? "==" : "!=", " ",
                            r.OneIn(3) ? "'Severe'" : r.Pick(severities));
      case 1:
        return absl::StrCat(r.OneIn(2) ? "'red_flag'" : "'red-flag'",
                            " in flags");
      case 2:
        return absl::StrCat(term(), " in [", r.Pick(constants), ", ",
                            r.Pick(constants), "]");
      default:
        return absl::StrCat(term(), " ", r.Pick(kOps), " ", term());
    }
  };
  int rejected = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const bool single = r.OneIn(2);
    std::string text = comparison();
    if (!single) {
      text = absl::StrCat(r.OneIn(3) ? "!" : "", "(", text,
                          r.OneIn(2) ? " && " : " || ", comparison(), ")");
    }
    const std::vector<std::string> issues = testing::ConditionIssues(text);
    bool whole = false;
    for (const std::string& issue : issues) {
      ASSERT_THAT(issue,
                  ::testing::AnyOf(::testing::HasSubstr("can never be true"),
                                   ::testing::HasSubstr("this condition")))
          << text;
      whole |= single || absl::StrContains(issue, "this condition");
    }
    if (!whole) continue;
    ++rejected;
    auto program = testing::MustCompile(text);
    ASSERT_NE(program, nullptr);
    for (int t = 0; t < 200; ++t) {
      FactTable table;
      for (const RangedFact& f : facts) table.Set(f.path, r.Pick(f.values));
      table.Set("phq9.severity", r.Pick(severities));
      table.Set("flags",
                r.OneIn(2) ? "['red_flag']" : "['clinician_risk_concern']");
      ASSERT_FALSE(program->Evaluate(table.slots()).is_true())
          << text << " was rejected as never true";
    }
  }
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace stepwise::expr

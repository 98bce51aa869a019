#include "engine/expr/compiler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace stepwise::expr {
namespace {

Tag TagOf(const Type& t) {
  switch (t.kind) {
    case Kind::kBool:
      return Tag::kBool;
    case Kind::kInt:
      return Tag::kInt;
    case Kind::kDouble:
      return Tag::kDouble;
    case Kind::kString:
      return Tag::kString;
    case Kind::kList:
      return Tag::kList;
  }
  return Tag::kAbsent;
}

Rel RelOf(BinaryOp op) {
  switch (op) {
    case BinaryOp::kLt:
      return Rel::kLt;
    case BinaryOp::kLe:
      return Rel::kLe;
    case BinaryOp::kGt:
      return Rel::kGt;
    case BinaryOp::kGe:
      return Rel::kGe;
    case BinaryOp::kEq:
      return Rel::kEq;
    default:
      return Rel::kNe;
  }
}

// `c OP x` is `x OP' c`.
Rel Mirror(Rel rel) {
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

bool Decided(const Value& v) { return !v.undecided(); }

constexpr int64_t kIntMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kIntMax = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// `x REL k` over ints as lo <= x <= hi (negated for !=). An empty range is
// lo > hi.
void SetIntRange(Rel rel, int64_t k, Node* n) {
  int64_t lo = kIntMin;
  int64_t hi = kIntMax;
  switch (rel) {
    case Rel::kLt:
      if (k == kIntMin) {
        lo = 1;
        hi = 0;
      } else {
        hi = k - 1;
      }
      break;
    case Rel::kLe:
      hi = k;
      break;
    case Rel::kGt:
      if (k == kIntMax) {
        lo = 1;
        hi = 0;
      } else {
        lo = k + 1;
      }
      break;
    case Rel::kGe:
      lo = k;
      break;
    case Rel::kEq:
    case Rel::kNe:
      lo = hi = k;
      break;
  }
  n->lo.i = lo;
  n->hi.i = hi;
  n->negate = rel == Rel::kNe;
}

// The same over doubles. Strict relations move the bound to the next
// double, which is exact; a NaN bound makes the range empty (every
// comparison with it is false), which is also what NaN constants and
// impossible bounds (x < -inf, x > inf) need.
void SetDoubleRange(Rel rel, double k, Node* n) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double lo = -kInf;
  double hi = kInf;
  switch (rel) {
    case Rel::kLt:
      hi = k == -kInf ? nan : std::nextafter(k, -kInf);
      break;
    case Rel::kLe:
      hi = k;
      break;
    case Rel::kGt:
      lo = k == kInf ? nan : std::nextafter(k, kInf);
      break;
    case Rel::kGe:
      lo = k;
      break;
    case Rel::kEq:
    case Rel::kNe:
      lo = hi = k;
      break;
  }
  if (std::isnan(k)) lo = hi = nan;
  n->lo.d = lo;
  n->hi.d = hi;
  n->negate = rel == Rel::kNe;
}

class Compiler {
 public:
  explicit Compiler(Program::Impl* plan) : plan_(*plan) {}

  void Run(const Ast& ast, bool root_to_double) {
    uint32_t root = Emit(ast, ast.root);
    if (root_to_double && ast.node(ast.root).type.kind == Kind::kInt) {
      root = ToDouble(root);
    }
    plan_.root = root;
    CollectSlots();
    LayOutTop();
  }

 private:
  struct Mark {
    size_t nodes;
    size_t kids;
  };
  Mark Here() const { return {plan_.nodes.size(), plan_.kids.size()}; }
  void Truncate(Mark m) {
    plan_.nodes.resize(m.nodes);
    plan_.info.resize(m.nodes);
    plan_.kids.resize(m.kids);
  }

  uint32_t Push(const Node& n, NodeInfo info = {}) {
    plan_.nodes.push_back(n);
    plan_.info.push_back(info);
    return static_cast<uint32_t>(plan_.nodes.size() - 1);
  }
  uint32_t Const(const Value& v, NodeInfo info = {}) {
    Node n;
    n.op = Op::kConst;
    n.k = v;
    return Push(n, info);
  }
  uint32_t Unary(Op op, uint32_t a) {
    Node n;
    n.op = op;
    n.a = a;
    return Push(n);
  }
  uint32_t Binary(Op op, uint32_t a, uint32_t b, uint8_t sub = 0) {
    Node n;
    n.op = op;
    n.a = a;
    n.b = b;
    n.sub = sub;
    return Push(n);
  }
  uint32_t Nary(Op op, const std::vector<uint32_t>& kids, uint8_t sub = 0) {
    Node n;
    n.op = op;
    n.sub = sub;
    n.a = static_cast<uint32_t>(plan_.kids.size());
    n.b = static_cast<uint32_t>(kids.size());
    plan_.kids.insert(plan_.kids.end(), kids.begin(), kids.end());
    return Push(n);
  }

  bool IsConst(uint32_t i) const { return plan_.nodes[i].op == Op::kConst; }
  bool IsPlainFact(uint32_t i) const {
    return plan_.nodes[i].op == Op::kFact && plan_.info[i].define < 0;
  }

  // An int operand made double: constants in place, others by a node.
  uint32_t ToDouble(uint32_t i) {
    Node& n = plan_.nodes[i];
    if (n.op == Op::kConst) {
      if (n.k.tag == Tag::kInt) n.k = Value::Double(static_cast<double>(n.k.i));
      return i;
    }
    return Unary(Op::kToDouble, i);
  }
  uint32_t Promote(uint32_t i, const Type& from, bool to_double) {
    return to_double && from.kind == Kind::kInt ? ToDouble(i) : i;
  }

  // Replaces a node whose operands are all constants by its value.
  uint32_t Fold(uint32_t i, Mark m) {
    for (uint32_t c : NodeChildren(plan_, i)) {
      if (!IsConst(c)) return i;
    }
    const Value v = EvalNode(plan_, i, nullptr);
    const NodeInfo info = plan_.info[i];
    Truncate(m);
    return Const(v, info);
  }

  int DefineId(const DefineEntry* d) {
    auto [it, inserted] =
        define_ids_.emplace(d, static_cast<int>(plan_.define_names.size()));
    if (inserted) plan_.define_names.push_back(d->name);
    return it->second;
  }

  void NoteSlot(uint32_t slot, const std::string& path) {
    slot_paths_.emplace(slot, path);
  }

  // The list literal an operand is, looking through defines.
  static bool ListLiteral(const Ast* a, uint32_t i, const Ast** out_ast,
                          uint32_t* out) {
    while (a->node(i).kind == NodeKind::kPath &&
           a->node(i).path_kind == PathKind::kDefine) {
      const DefineEntry* d = a->node(i).define;
      a = &d->ast;
      i = d->ast.root;
    }
    if (a->node(i).kind != NodeKind::kList) return false;
    *out_ast = a;
    *out = i;
    return true;
  }

  uint32_t Emit(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    const Mark m = Here();
    switch (n.kind) {
      case NodeKind::kInt:
        return Const(Value::Int(n.int_value));
      case NodeKind::kDouble:
        return Const(Value::Double(n.double_value));
      case NodeKind::kBool:
        return Const(Value::Bool(n.bool_value));
      case NodeKind::kString:
        plan_.strings.push_back(n.str);
        return Const(Value::String(&plan_.strings.back()));
      case NodeKind::kPath:
        return EmitPath(a, i);
      case NodeKind::kList:
        return EmitConstList(a, i);
      case NodeKind::kCall:
        return EmitCall(a, i, m);
      case NodeKind::kNot:
        return Fold(Unary(Op::kNot, Emit(a, n.children[0])), m);
      case NodeKind::kNeg: {
        const bool is_int = n.type.kind == Kind::kInt;
        return Fold(
            Unary(is_int ? Op::kNegI : Op::kNegD, Emit(a, n.children[0])), m);
      }
      case NodeKind::kBinary:
        if (IsRelation(n.op)) return EmitRelation(a, i, m);
        return EmitArithmetic(a, i, m);
      case NodeKind::kAnd:
      case NodeKind::kOr:
        return EmitLogical(a, i, m);
      case NodeKind::kCond: {
        const bool to_double = n.type.kind == Kind::kDouble;
        const uint32_t c = Emit(a, n.children[0]);
        const uint32_t x = Promote(Emit(a, n.children[1]),
                                   a.node(n.children[1]).type, to_double);
        const uint32_t y = Promote(Emit(a, n.children[2]),
                                   a.node(n.children[2]).type, to_double);
        Node node;
        node.op = Op::kCond;
        node.a = c;
        node.b = x;
        node.c = y;
        return Fold(Push(node), m);
      }
    }
    return Const(Value::Error(ErrorCode::kInvalidArgument));
  }

  uint32_t EmitPath(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    if (n.path_kind == PathKind::kDefine) {
      const uint32_t body = Emit(n.define->ast, n.define->ast.root);
      plan_.info[body].define = DefineId(n.define);
      return body;
    }
    NoteSlot(n.slot, n.str);
    Node node;
    node.op = Op::kFact;
    node.a = n.slot;
    node.sub = static_cast<uint8_t>(TagOf(n.type));
    return Push(node);
  }

  uint32_t EmitConstList(const Ast& a, uint32_t i) {
    const AstNode& n = a.node(i);
    const Mark m = Here();
    const bool to_double = n.type.elem == Kind::kDouble;
    std::vector<Value> values;
    for (uint32_t c : n.children) {
      const uint32_t e = Promote(Emit(a, c), a.node(c).type, to_double);
      // The checker admits only constant lists here, so each element
      // folded to a constant.
      values.push_back(IsConst(e) ? plan_.nodes[e].k
                                  : Value::Error(ErrorCode::kInvalidArgument));
    }
    Truncate(m);
    for (const Value& v : values) {
      if (!Decided(v)) return Const(v);  // the list is undecided
    }
    auto storage = std::make_unique<Value[]>(values.size());
    std::copy(values.begin(), values.end(), storage.get());
    const Value list =
        Value::List(storage.get(), static_cast<uint32_t>(values.size()));
    plan_.lists.push_back(std::move(storage));
    return Const(list);
  }

  // The elements of a list literal that reads facts, each converted to
  // double when `to_double`.
  std::vector<uint32_t> EmitElements(const Ast& a, uint32_t list,
                                     bool to_double) {
    std::vector<uint32_t> out;
    for (uint32_t c : a.node(list).children) {
      out.push_back(Promote(Emit(a, c), a.node(c).type, to_double));
    }
    return out;
  }

  uint32_t EmitCall(const Ast& a, uint32_t i, Mark m) {
    const AstNode& n = a.node(i);
    switch (n.function) {
      case Function::kHas: {
        const AstNode& arg = a.node(n.children[0]);
        NoteSlot(arg.slot, arg.str);
        Node node;
        node.op =
            arg.path_kind == PathKind::kGroup ? Op::kHasGroup : Op::kHasFact;
        node.a = arg.slot;
        return Push(node);
      }
      case Function::kSize: {
        const AstNode& arg = a.node(n.children[0]);
        const Ast* list_ast;
        uint32_t list;
        if (arg.reads_facts &&
            ListLiteral(&a, n.children[0], &list_ast, &list)) {
          return Nary(Op::kSizeList, EmitElements(*list_ast, list, false));
        }
        const Op op = arg.type.kind == Kind::kString ? Op::kSizeS : Op::kSizeL;
        return Fold(Unary(op, Emit(a, n.children[0])), m);
      }
      case Function::kMin:
      case Function::kMax: {
        const bool to_double = n.type.kind == Kind::kDouble;
        std::vector<uint32_t> args;
        for (uint32_t c : n.children) {
          args.push_back(Promote(Emit(a, c), a.node(c).type, to_double));
        }
        const bool is_min = n.function == Function::kMin;
        const Op op = to_double ? (is_min ? Op::kMinD : Op::kMaxD)
                                : (is_min ? Op::kMinI : Op::kMaxI);
        return Fold(Nary(op, args), m);
      }
      case Function::kAbs: {
        const bool is_int = n.type.kind == Kind::kInt;
        return Fold(
            Unary(is_int ? Op::kAbsI : Op::kAbsD, Emit(a, n.children[0])), m);
      }
      case Function::kNone:
        break;
    }
    return Const(Value::Error(ErrorCode::kInvalidArgument));
  }

  uint32_t EmitArithmetic(const Ast& a, uint32_t i, Mark m) {
    const AstNode& n = a.node(i);
    const bool to_double = n.type.kind == Kind::kDouble;
    const uint32_t l =
        Promote(Emit(a, n.children[0]), a.node(n.children[0]).type, to_double);
    const uint32_t r =
        Promote(Emit(a, n.children[1]), a.node(n.children[1]).type, to_double);
    Op op;
    switch (n.op) {
      case BinaryOp::kAdd:
        op = to_double ? Op::kAddD : Op::kAddI;
        break;
      case BinaryOp::kSub:
        op = to_double ? Op::kSubD : Op::kSubI;
        break;
      case BinaryOp::kMul:
        op = to_double ? Op::kMulD : Op::kMulI;
        break;
      case BinaryOp::kDiv:
        op = to_double ? Op::kDivD : Op::kDivI;
        break;
      default:
        op = Op::kModI;
        break;
    }
    return Fold(Binary(op, l, r), m);
  }

  uint32_t EmitRelation(const Ast& a, uint32_t i, Mark m) {
    const AstNode& n = a.node(i);
    const Type lt = a.node(n.children[0]).type;
    const Type rt = a.node(n.children[1]).type;
    if (n.op == BinaryOp::kIn) return EmitIn(a, i, m);
    const Rel rel = RelOf(n.op);
    uint32_t l = Emit(a, n.children[0]);
    uint32_t r = Emit(a, n.children[1]);
    if (const auto fused = Fuse(rel, l, lt, r, rt, m)) return *fused;
    if (lt.is_numeric()) {
      const bool to_double =
          lt.kind == Kind::kDouble || rt.kind == Kind::kDouble;
      l = Promote(l, lt, to_double);
      r = Promote(r, rt, to_double);
      return Fold(Binary(to_double ? Op::kRelD : Op::kRelI, l, r,
                         static_cast<uint8_t>(rel)),
                  m);
    }
    const Op op = lt.kind == Kind::kString ? Op::kRelS : Op::kRelB;
    return Fold(Binary(op, l, r, static_cast<uint8_t>(rel)), m);
  }

  // `fact OP constant` (either way round) as one node.
  std::optional<uint32_t> Fuse(Rel rel, uint32_t l, const Type& lt, uint32_t r,
                               const Type& rt, Mark m) {
    bool flipped = false;
    uint32_t fact = l;
    uint32_t constant = r;
    Type ft = lt;
    if (IsPlainFact(r) && IsConst(l)) {
      flipped = true;
      fact = r;
      constant = l;
      ft = rt;
      rel = Mirror(rel);
    } else if (!(IsPlainFact(l) && IsConst(r))) {
      return std::nullopt;
    }
    Value k = plan_.nodes[constant].k;
    if (!Decided(k)) return std::nullopt;
    Node node;
    node.a = plan_.nodes[fact].a;
    node.sub = static_cast<uint8_t>(rel);
    if (ft.kind == Kind::kInt && k.tag == Tag::kInt) {
      node.op = Op::kCmpIK;
    } else if (ft.kind == Kind::kInt && k.tag == Tag::kDouble) {
      node.op = Op::kCmpIDK;
    } else if (ft.kind == Kind::kDouble && k.tag == Tag::kInt) {
      node.op = Op::kCmpDK;
      k = Value::Double(static_cast<double>(k.i));
    } else if (ft.kind == Kind::kDouble && k.tag == Tag::kDouble) {
      node.op = Op::kCmpDK;
    } else if (ft.kind == Kind::kString && k.tag == Tag::kString &&
               (rel == Rel::kEq || rel == Rel::kNe)) {
      node.op = rel == Rel::kEq ? Op::kEqSK : Op::kNeSK;
    } else {
      return std::nullopt;
    }
    node.k = k;
    if (node.op == Op::kCmpIK) {
      SetIntRange(rel, k.i, &node);
    } else if (node.op == Op::kCmpDK || node.op == Op::kCmpIDK) {
      SetDoubleRange(rel, k.d, &node);
    }
    NodeInfo info;
    info.flipped = flipped;
    info.const_define = plan_.info[constant].define;
    Truncate(m);
    return Push(node, info);
  }

  static InKind InKindOf(Kind needle, Kind elem) {
    if (needle == Kind::kString) return InKind::kString;
    if (needle == Kind::kBool) return InKind::kBool;
    if (needle == Kind::kInt && elem == Kind::kInt) return InKind::kInt;
    if (needle == Kind::kDouble && elem == Kind::kInt) {
      return InKind::kDoubleInIntList;
    }
    return InKind::kDouble;
  }

  uint32_t EmitIn(const Ast& a, uint32_t i, Mark m) {
    const AstNode& n = a.node(i);
    const Type needle_type = a.node(n.children[0]).type;
    const AstNode& list_node = a.node(n.children[1]);
    const Ast* list_ast;
    uint32_t list;
    if (list_node.reads_facts &&
        ListLiteral(&a, n.children[1], &list_ast, &list)) {
      const bool to_double = needle_type.kind == Kind::kDouble ||
                             list_node.type.elem == Kind::kDouble;
      const uint32_t needle =
          Promote(Emit(a, n.children[0]), needle_type, to_double);
      const std::vector<uint32_t> elems =
          EmitElements(*list_ast, list, to_double);
      const Kind kind = to_double ? Kind::kDouble : needle_type.kind;
      const uint32_t node =
          Nary(Op::kInList, elems, static_cast<uint8_t>(InKindOf(kind, kind)));
      plan_.nodes[node].c = needle;
      return Fold(node, m);
    }
    Kind elem = list_node.type.elem;
    uint32_t needle = Emit(a, n.children[0]);
    const uint32_t haystack = Emit(a, n.children[1]);
    if (needle_type.kind == Kind::kString && IsConst(needle) &&
        Decided(plan_.nodes[needle].k) && IsPlainFact(haystack)) {
      Node node;
      node.op = Op::kInSK;
      node.a = plan_.nodes[haystack].a;
      node.k = plan_.nodes[needle].k;
      NodeInfo info;
      info.const_define = plan_.info[needle].define;
      Truncate(m);
      return Push(node, info);
    }
    Kind needle_kind = needle_type.kind;
    if (needle_kind == Kind::kInt && elem == Kind::kDouble) {
      needle = ToDouble(needle);
      needle_kind = Kind::kDouble;
    }
    return Fold(Binary(Op::kIn, needle, haystack,
                       static_cast<uint8_t>(InKindOf(needle_kind, elem))),
                m);
  }

  uint32_t EmitLogical(const Ast& a, uint32_t i, Mark m) {
    const AstNode& n = a.node(i);
    const Op op = n.kind == NodeKind::kAnd ? Op::kAnd : Op::kOr;
    std::vector<uint32_t> kids;
    for (uint32_t c : n.children) {
      const uint32_t k = Emit(a, c);
      const Node& child = plan_.nodes[k];
      if (child.op == op && plan_.info[k].define < 0) {
        // (a && b) && c is one chain; the inner node is left unreferenced.
        for (uint32_t j = 0; j < child.b; ++j) {
          kids.push_back(plan_.kids[child.a + j]);
        }
      } else {
        kids.push_back(k);
      }
    }
    return Fold(Nary(op, kids), m);
  }

  // slots_read and the slot -> path table, over the nodes reachable from
  // the root.
  void CollectSlots() {
    std::vector<uint32_t> stack = {plan_.root};
    std::vector<bool> seen(plan_.nodes.size(), false);
    std::vector<uint32_t> slots;
    while (!stack.empty()) {
      const uint32_t i = stack.back();
      stack.pop_back();
      if (seen[i]) continue;
      seen[i] = true;
      const Node& n = plan_.nodes[i];
      if (ReadsSlot(n.op)) slots.push_back(n.a);
      for (uint32_t c : NodeChildren(plan_, i)) stack.push_back(c);
    }
    std::sort(slots.begin(), slots.end());
    slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
    plan_.slots_read = slots;
    for (uint32_t slot : slots) {
      auto it = slot_paths_.find(slot);
      plan_.slot_paths.emplace_back(
          slot, it == slot_paths_.end() ? std::string() : it->second);
    }
  }

  // A root-chain operand; `c` holds the tag the fast loop expects in slot
  // `a`. Other operands get a tag no slot holds (and slot 0, which exists:
  // a chain that survived constant folding reads some fact), so the loop's
  // one tag test sends them to the general path.
  static Node TopNode(Node n) {
    if (n.op == Op::kCmpIK || n.op == Op::kCmpDK) {
      n.c =
          static_cast<uint32_t>(n.op == Op::kCmpIK ? Tag::kInt : Tag::kDouble);
    } else {
      n.c = kNotInline;
      n.a = 0;
    }
    return n;
  }

  void LayOutTop() {
    const Node& root = plan_.nodes[plan_.root];
    if (root.op == Op::kAnd || root.op == Op::kOr) {
      plan_.top_op = root.op;
      for (uint32_t j = 0; j < root.b; ++j) {
        const uint32_t k = plan_.kids[root.a + j];
        plan_.top.push_back(TopNode(plan_.nodes[k]));
        plan_.top_index.push_back(k);
      }
    } else if (IsInlineLeaf(root.op)) {
      // A single comparison is a chain of one.
      plan_.top_op = Op::kAnd;
      plan_.top.push_back(TopNode(root));
      plan_.top_index.push_back(plan_.root);
    }
  }

  Program::Impl& plan_;
  std::map<const DefineEntry*, int> define_ids_;
  std::map<uint32_t, std::string> slot_paths_;
};

}  // namespace

void CompilePlan(const Ast& ast, bool root_to_double, Program::Impl* plan) {
  Compiler(plan).Run(ast, root_to_double);
}

}  // namespace stepwise::expr

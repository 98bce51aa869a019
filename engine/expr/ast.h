// Internal: the syntax tree the parser builds and the checker annotates, and
// the compiled defines that conditions may name. A tree lives in one arena
// (`Ast::nodes`), children by index, so it can be moved as a whole into a
// define. Built and read by one thread during compilation; never touched by
// Program::Evaluate.
#ifndef STEPWISE_ENGINE_EXPR_AST_H_
#define STEPWISE_ENGINE_EXPR_AST_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr/declarations.h"
#include "engine/expr/program.h"
#include "engine/expr/value.h"

namespace stepwise::expr {

enum class NodeKind : uint8_t {
  kInt,     // `int_value`
  kDouble,  // `double_value`
  kBool,    // `bool_value`
  kString,  // `str` (decoded)
  kList,    // children: the elements
  kPath,    // `str`: a dotted path or a bare identifier
  kCall,    // `str`: the function name; children: the arguments
  kNot,     // children[0]
  kNeg,     // children[0]
  kBinary,  // `op`; children[0], children[1]
  kAnd,     // children: two or more operands
  kOr,      // children: two or more operands
  kCond,    // children: condition, then, else
};

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kIn,
};

// "+", "<=", "in", ...
std::string_view BinaryOpText(BinaryOp op);
inline bool IsRelation(BinaryOp op) { return op >= BinaryOp::kLt; }
inline bool IsOrdering(BinaryOp op) {
  return op >= BinaryOp::kLt && op <= BinaryOp::kGe;
}

// The built-in functions.
enum class Function : uint8_t { kNone, kHas, kSize, kMin, kMax, kAbs };

// What a path names, once checked.
enum class PathKind : uint8_t { kUnresolved, kFact, kGroup, kDefine };

struct DefineEntry;

struct AstNode {
  NodeKind kind = NodeKind::kInt;
  BinaryOp op = BinaryOp::kAdd;
  // Byte offsets into the source text: the node spans [begin, end); `at` is
  // where issues about it point (the operator of a binary node, the start
  // otherwise).
  uint32_t begin = 0;
  uint32_t end = 0;
  uint32_t at = 0;
  int64_t int_value = 0;
  double double_value = 0;
  bool bool_value = false;
  std::string str;
  std::vector<uint32_t> children;

  // Filled by the checker.
  Type type;
  bool bad = false;          // an issue was reported here or below
  bool reads_facts = false;  // depends on the fact table
  int parens = 0;            // pairs of parentheses written around the node
  int depth = 1;             // height of the subtree (each pair of
                             // parentheses a level), defines expanded
  size_t size = 1;           // node count, defines expanded
  Function function = Function::kNone;
  PathKind path_kind = PathKind::kUnresolved;
  uint32_t slot = kNoSlot;              // kFact, kGroup
  int fact = -1;                        // kFact: index into Ast::facts
  const DefineEntry* define = nullptr;  // kDefine
};

struct Ast {
  std::string source;
  std::vector<AstNode> nodes;
  uint32_t root = 0;
  // Copies of the declarations the tree's paths resolved to, so that a
  // define's tree does not point into a Declarations object.
  std::vector<FactDecl> facts;

  const AstNode& node(uint32_t i) const { return nodes[i]; }
  std::string_view Text(const AstNode& n) const {
    return std::string_view(source).substr(n.begin, n.end - n.begin);
  }
};

struct DefineEntry {
  std::string name;
  int index = 0;  // position in the define block
  Ast ast;
  Type type;
  bool reads_facts = false;
};

struct Defines::Impl {
  std::vector<std::unique_ptr<DefineEntry>> entries;
  std::map<std::string, const DefineEntry*, std::less<>> by_name;

  const DefineEntry* Find(std::string_view name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }
};

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_AST_H_

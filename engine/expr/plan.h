// Internal: the compiled form of an expression, which Program::Evaluate
// runs. A plan is a flat array of fixed-size nodes (children by index) whose
// types were all resolved at compile time, so the evaluator never dispatches
// on a type it already knows; the common shapes have nodes of their own
// (a fact compared with a constant, `"x" in flags`, has(), n-ary && and ||).
// Immutable after compilation; evaluated concurrently without locks.
#ifndef STEPWISE_ENGINE_EXPR_PLAN_H_
#define STEPWISE_ENGINE_EXPR_PLAN_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "engine/expr/program.h"
#include "engine/expr/value.h"

namespace stepwise::expr {

// A comparison operator (in Node::sub of comparison nodes).
enum class Rel : uint8_t { kLt, kLe, kGt, kGe, kEq, kNe };

// How `in` compares the needle with the elements.
enum class InKind : uint8_t {
  kInt,
  kDouble,
  kDoubleInIntList,  // a double needle, int elements
  kString,
  kBool,
};

enum class Op : uint8_t {
  kConst,     // k
  kFact,      // a: slot; sub: the Tag the declaration promises
  kHasFact,   // a: slot
  kHasGroup,  // a: slot (a bool that is true when the group is present)
  // A fact compared with a constant: a: slot; k: the constant; sub: Rel.
  // The comparison is precomputed as the range of fact values it accepts,
  // lo <= x <= hi (true unless `negate`), so evaluating it needs no branch
  // on the operator.
  kCmpIK,   // int fact, int constant
  kCmpDK,   // double fact, double constant
  kCmpIDK,  // int fact promoted, double constant
  kEqSK,
  kNeSK,  // string fact ==/!= constant
  kInSK,  // constant string in a list(string) fact at slot a
  kNot,   // a: operand
  kAnd,
  kOr,    // a: first kid, b: kid count
  kCond,  // a: condition, b: then, c: else
  kNegI,
  kNegD,
  kToDouble,
  kAbsI,
  kAbsD,  // a: operand
  kAddI,
  kSubI,
  kMulI,
  kDivI,
  kModI,  // a, b: operands
  kAddD,
  kSubD,
  kMulD,
  kDivD,
  kRelI,
  kRelD,
  kRelS,
  kRelB,      // a, b: operands; sub: Rel
  kIn,        // a: needle, b: list value; sub: InKind
  kInList,    // c: needle; a, b: the elements of a list literal; sub: InKind
  kSizeS,     // a: string
  kSizeL,     // a: list value
  kSizeList,  // a, b: the elements of a list literal
  kMinI,
  kMaxI,
  kMinD,
  kMaxD,  // a, b: arguments
};

// True when the node reads slot `a` itself (facts, has(), fused nodes).
inline bool ReadsSlot(Op op) {
  return op == Op::kFact || op == Op::kHasFact || op == Op::kHasGroup ||
         (op >= Op::kCmpIK && op <= Op::kInSK);
}

// Program::Impl::top: an operand the chain loop does not evaluate inline.
inline constexpr uint32_t kNotInline = 0xFF;

union Bound {
  int64_t i;
  double d;
};

struct Node {
  Op op = Op::kConst;
  uint8_t sub = 0;
  bool negate = false;
  uint32_t a = 0;
  uint32_t b = 0;
  uint32_t c = 0;
  Value k;
  Bound lo{0};
  Bound hi{0};
};
static_assert(sizeof(Node) == 48, "plan nodes should stay small");

// What explanations need beyond the plan; never read by Evaluate.
struct NodeInfo {
  int32_t define = -1;        // the node is the root of this define's body
  int32_t const_define = -1;  // fused node: its constant came from a define
  bool flipped = false;       // fused node: the constant was written first
};

struct Program::Impl {
  std::string source;
  Type type;
  std::vector<Node> nodes;
  std::vector<uint32_t> kids;
  uint32_t root = 0;
  // Storage the constants point into; deque and unique_ptr keep addresses
  // stable while the plan grows.
  std::deque<std::string> strings;
  std::vector<std::unique_ptr<Value[]>> lists;
  std::vector<uint32_t> slots_read;
  std::vector<NodeInfo> info;  // parallel to `nodes`
  std::vector<std::string> define_names;
  std::vector<std::pair<uint32_t, std::string>> slot_paths;  // sorted by slot

  // When the root is an && / || chain (or a single operand of the kinds a
  // chain inlines), its operands copied contiguously, so that Evaluate runs
  // them in one loop: no recursion, no child indirection. In these copies
  // `c` is the tag the loop expects in slot `a` (kNotInline: never matches,
  // use the general path). `top_index` holds each operand's node index, for
  // the general path.
  Op top_op = Op::kConst;  // kAnd or kOr when the fast path applies
  std::vector<Node> top;
  std::vector<uint32_t> top_index;

  // Per node: the path of the slot a node that reads one (ReadsSlot)
  // shows, pointing into slot_paths; null for the others. Built by Compile
  // once the plan is final, so explanations need no lookup.
  std::vector<const std::string*> node_paths;
  // Per node that shows one value (a fact, has(), a fused comparison, a
  // constant in a list fact): its text is shown_before[i], the value, then
  // shown_after[i]; the fixed parts are built once (PrepareExplanations),
  // not per request. Empty when not prepared.
  std::vector<std::string> shown_before;
  std::vector<std::string> shown_after;
  // Per node: kShowsSlot / kShowsNode when its whole text is the prepared
  // text around the value of its slot / of the node itself (no define
  // around it), else kShowsNone. Lets && / || render such operands inline.
  enum ShownKind : uint8_t { kShowsNone, kShowsSlot, kShowsNode };
  std::vector<uint8_t> shown_kind;

  const std::string& SlotPath(uint32_t slot) const;
  // node_paths[index] (or SlotPath(nodes[index].a) when it was not built).
  const std::string& NodePath(uint32_t index) const {
    if (index < node_paths.size() && node_paths[index] != nullptr)
      return *node_paths[index];
    return SlotPath(nodes[index].a);
  }
};

// Evaluates node `index` of a plan. `slots` may be null when the subtree
// reads no fact (constant folding).
Value EvalNode(const Node* nodes, const uint32_t* kids, uint32_t index,
               const Value* slots);

inline Value EvalNode(const Program::Impl& plan, uint32_t index,
                      const Value* slots) {
  return EvalNode(plan.nodes.data(), plan.kids.data(), index, slots);
}

// EvalNode that also stores in record[i] the value of every node i it
// evaluates on the way (record has nodes.size() entries). Nodes a
// short-circuit skipped are left as they were. For explanations, which
// need the values of subtrees without evaluating them again.
Value EvalNodeRecording(const Program::Impl& plan, uint32_t index,
                        const Value* slots, Value* record);

// Whether a root that is this node alone is laid out as a chain of one
// (Program::Impl::top).
bool IsInlineLeaf(Op op);

// Builds node_paths, shown_before and shown_after (explain.cc); Compile
// calls it once the plan is final.
void PrepareExplanations(Program::Impl* plan);

// Fills `out` for an explained evaluation (explain.cc).
void ExplainPlan(const Program::Impl& plan, const Value* slots,
                 Explanation* out);
void ExplainText(const Program::Impl& plan, const Value* slots,
                 std::string* out);
void ExplainCauses(const Program::Impl& plan, const Value* slots,
                   std::vector<std::string>* missing_facts,
                   std::vector<std::string>* errors);
// Program::ExplainParts.
void ExplainParts(const Program::Impl& plan, const Value* slots,
                  std::string* text, ExplainedCauses* causes);

// The children a node evaluates, in order (for explanations).
std::vector<uint32_t> NodeChildren(const Program::Impl& plan, uint32_t index);
// The same into `out` (cleared first), without allocating for up to 8.
void NodeChildren(const Program::Impl& plan, uint32_t index,
                  absl::InlinedVector<uint32_t, 8>* out);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_PLAN_H_

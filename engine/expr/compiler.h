// Internal: lowers a checked tree (defines expanded in place) to a plan:
// constant subtrees are folded, int operands of double operations get their
// conversion made explicit (constants converted once, here), a fact compared
// with a constant becomes one fused node, and nested && / || chains become
// one n-ary node.
#ifndef STEPWISE_ENGINE_EXPR_COMPILER_H_
#define STEPWISE_ENGINE_EXPR_COMPILER_H_

#include "engine/expr/ast.h"
#include "engine/expr/plan.h"

namespace stepwise::expr {

// Fills `plan` (nodes, constants, slots read, explanation data) from the
// checked `ast`. With `root_to_double`, an int result is converted to double.
void CompilePlan(const Ast& ast, bool root_to_double, Program::Impl* plan);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_COMPILER_H_

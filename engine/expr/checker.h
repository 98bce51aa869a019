// Internal: resolves the paths of a parsed tree (facts, instrument groups,
// defines) and assigns every node its static type, reporting each mistake
// once as an Issue in plain words. Also measures the tree as it will be
// compiled (depth and node count with defines expanded) against the limits.
#ifndef STEPWISE_ENGINE_EXPR_CHECKER_H_
#define STEPWISE_ENGINE_EXPR_CHECKER_H_

#include <vector>

#include "engine/expr/ast.h"
#include "engine/expr/declarations.h"
#include "engine/expr/program.h"

namespace stepwise::expr {

// Annotates `ast` in place. `defines` may be null. Returns false when an
// issue was appended. A define's body (`is_define`) may be a list literal
// holding facts; such a define is then usable only where that list would be
// (after 'in', inside size()).
bool Check(Ast* ast, const Declarations& decls, const Defines::Impl* defines,
           const Limits& limits, bool is_define, std::vector<Issue>* issues);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_CHECKER_H_

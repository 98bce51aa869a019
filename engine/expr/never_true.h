// Internal: proves, where it can, that a checked bool expression can never be
// true given the declared ranges of the facts it reads (interval arithmetic
// over + - * min max abs and ?:, whole-number facts, closed sets of string
// values). Sound by construction: it reports only what no fact table within
// the declarations can make true; everything it cannot bound it treats as
// possibly true.
#ifndef STEPWISE_ENGINE_EXPR_NEVER_TRUE_H_
#define STEPWISE_ENGINE_EXPR_NEVER_TRUE_H_

#include <vector>

#include "engine/expr/ast.h"
#include "engine/expr/program.h"

namespace stepwise::expr {

// Appends an issue at every comparison of `ast`'s own text that can never be
// true, and one at the root when the whole expression can never be true
// (unless the root is itself such a comparison). Defines are analysed
// through, but their comparisons are not reported here.
void ReportNeverTrue(const Ast& ast, std::vector<Issue>* issues);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_NEVER_TRUE_H_

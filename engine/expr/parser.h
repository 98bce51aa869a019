// Internal: the recursive-descent parser for the expression language
// (grammar in docs/expression-language.md). Enforces the length, depth and
// list-size limits while it builds the tree, so that no input, however
// deep, long or malformed, can exhaust the stack. Stops at the first syntax
// error.
#ifndef STEPWISE_ENGINE_EXPR_PARSER_H_
#define STEPWISE_ENGINE_EXPR_PARSER_H_

#include <string_view>
#include <vector>

#include "engine/expr/ast.h"
#include "engine/expr/program.h"

namespace stepwise::expr {

// The depth limit actually enforced: Limits::max_depth clamped to
// [1, kMaxDepthCap].
int EffectiveMaxDepth(const Limits& limits);

// Parses `text` into `ast` (which it resets). Returns false, with issues
// appended, when the text is not a well-formed expression.
bool Parse(std::string_view text, const Limits& limits, Ast* ast,
           std::vector<Issue>* issues);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_PARSER_H_

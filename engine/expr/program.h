// The expression language: a CEL subset (docs/expression-language.md).
// Stages are separate: Parse -> Check -> Compile produce a Program once per
// bundle; Program::Evaluate runs it many times over a request's fact table
// without string lookups, hashing or heap allocation.
//
// Two error channels, as in cel-cpp: absl::Status for system failures (none
// are expected here); mistakes in the author's text come back as Issues inside
// an OK result, each with a 1-based line and column inside the expression
// text, so the bundle loader can report file:line:column.
//
// Thread-safety: a Program is immutable after Compile and may be evaluated
// from any number of threads at once.
#ifndef STEPWISE_ENGINE_EXPR_PROGRAM_H_
#define STEPWISE_ENGINE_EXPR_PROGRAM_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "engine/expr/declarations.h"
#include "engine/expr/value.h"

namespace stepwise::expr {

// Limits on what one expression may be. Each default is documented; the
// bundle loader passes them from EngineOptions.
struct Limits {
  // Longest expression text, in bytes. Default: 4096.
  size_t max_length = 4096;
  // Deepest nesting of the syntax tree (parentheses, operators, calls).
  // Default: 64.
  int max_depth = 64;
  // Most elements in one list literal. Default: 256.
  size_t max_list_elements = 256;
  // Most nodes in one compiled expression once the defines it names are
  // expanded (a define used twice counts twice). Default: 16384.
  size_t max_nodes = 16384;
};

// Depth is also capped at this value whatever Limits::max_depth says, so that
// no input can exhaust the stack of the recursive checker and evaluator.
inline constexpr int kMaxDepthCap = 256;

struct Issue {
  int line = 1;    // 1-based, within the expression text
  int column = 1;  // 1-based, in bytes, within that line
  std::string message;
};

class Program;

// The named expressions of a ruleset's `define:` block, compiled in order;
// a define may use the defines before it. A define's paths resolve against
// the Declarations given to Add: compile the conditions that name it against
// the same ones. Read-only (and so thread-safe) once the block is added;
// programs compiled with it keep no pointer into it.
class Defines {
 public:
  Defines();
  ~Defines();
  Defines(Defines&&) noexcept;
  Defines& operator=(Defines&&) noexcept;

  // Parses and checks `text` as the define `name`. Issues are appended.
  // Returns false (and appends an issue) when the define has errors.
  bool Add(const std::string& name, std::string_view text,
           const Declarations& decls, const Limits& limits,
           std::vector<Issue>* issues);

  bool Contains(std::string_view name) const;

  // The defines added so far, in order, as (name, text): for tools that show
  // or compare the block.
  std::vector<std::pair<std::string, std::string>> Texts() const;

  // Internal: the compiled defines, read by Compile.
  struct Impl;
  const Impl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

struct CompileResult {
  // Null when `issues` is non-empty.
  std::unique_ptr<Program> program;
  std::vector<Issue> issues;
};

// Parses, type-checks and compiles `text`. `defines` may be null.
// `expected` (when set) is the type the expression must have; a mismatch is
// an issue ("condition must be bool, not int"). When `reject_never_true` is
// set and the checker can prove a bool expression never true given the
// declared ranges (e.g. `phq9.total > 27`), that is an issue too.
struct CompileOptions {
  const Defines* defines = nullptr;
  std::optional<Type> expected;
  bool reject_never_true = false;
  Limits limits;
};
absl::StatusOr<CompileResult> Compile(std::string_view text,
                                      const Declarations& decls,
                                      const CompileOptions& options);

// What an explained evaluation saw.
struct Explanation {
  // The expression with the values it saw, e.g. "phq9.item9 = 2 >= 1".
  std::string text;
  // Paths of the absent facts the result depended on, sorted, each once.
  std::vector<std::string> missing_facts;
  // Evaluation errors met ("integer overflow"), each once.
  std::vector<std::string> errors;
};

// Explanation::missing_facts and ::errors without a string built: the
// paths point into the Program (valid while it lives), the error names are
// static. Same order as Explanation's.
struct ExplainedCauses {
  absl::InlinedVector<const std::string*, 8> missing_facts;
  absl::InlinedVector<std::string_view, 2> errors;
};

class Program {
 public:
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  Type type() const;
  const std::string& source() const;

  // Hot path: no allocation, no lookup. `slots` has decls.slot_count()
  // entries. Absent facts and errors follow CEL's semantics.
  Value Evaluate(const Value* slots) const;

  // Same result, plus the explanation. Allocates; call it only for the rules
  // whose outcome is reported.
  Value Explain(const Value* slots, Explanation* out) const;

  // The parts of an explanation, for callers that need only some of them:
  // the text appended to `out` (Explanation::text), and the absent facts and
  // errors (Explanation::missing_facts, ::errors; both cleared first).
  void ExplainText(const Value* slots, std::string* out) const;
  void ExplainCauses(const Value* slots,
                     std::vector<std::string>* missing_facts,
                     std::vector<std::string>* errors) const;
  // Both in one pass, which evaluates the expression once for the two:
  // the text appended to `text` and the causes into `causes` (cleared
  // first). Either may be null. The cheapest way to explain a rule.
  void ExplainParts(const Value* slots, std::string* text,
                    ExplainedCauses* causes) const;

  // Slots this program reads (sorted, unique), e.g. for coverage reports.
  const std::vector<uint32_t>& slots_read() const;

  struct Impl;

 private:
  friend class Batch;
  friend absl::StatusOr<CompileResult> Compile(std::string_view,
                                               const Declarations&,
                                               const CompileOptions&);
  explicit Program(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Renders a value for explanations and the `stepwise expr` tool: ints as
// "3", doubles always with a decimal point or exponent ("8.0", "-0.25",
// "inf"), strings quoted, lists as "[1, 2]".
std::string FormatValue(const Value& value);
// FormatValue appended to `out`.
void AppendValue(const Value& value, std::string* out);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_PROGRAM_H_

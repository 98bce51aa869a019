// Test support: declarations shaped like the default bundle's facts (plus a
// few unconstrained ones for semantics tests) and a fact table that tests
// fill with values written in the expression language itself.
#ifndef STEPWISE_TESTS_ENGINE_EXPR_TEST_FACTS_H_
#define STEPWISE_TESTS_ENGINE_EXPR_TEST_FACTS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr/declarations.h"
#include "engine/expr/program.h"
#include "engine/expr/value.h"

namespace stepwise::expr::testing {

// Declares:
//   groups  phq9 gad7 cssrs previous.phq9 baseline.phq9
//   phq9.total 0..27, phq9.item1..item9 0..3, phq9.severity (closed set),
//   phq9.caseness, phq9.days_since >= 0, phq9.count >= 1,
//   phq9.change -27..27, phq9.pct_change >= -1, phq9.reliable_deterioration,
//   previous.phq9.total, baseline.phq9.total 0..27,
//   gad7.total 0..21, gad7.reliable_deterioration, gad7.severity,
//   cssrs.q1..q5 0..1, cssrs.q6 0..2, cssrs.days_since >= 0,
//   current_step 1..4, weeks_at_step >= 0, flags (closed set of strings),
//   and, without ranges: ints n m, doubles d e, strings s t, bools b c,
//   lists ints doubles.
const Declarations& TestDeclarations();

class FactTable {
 public:
  FactTable();

  // Sets `path` (a fact or group) to the value of `literal`, an expression
  // without facts ("13", "9.0", "[\"red_flag\"]", "1 / 0" for an error).
  FactTable& Set(std::string_view path, std::string_view literal);
  // Sets several: "phq9.total=13; weeks_at_step=9.0".
  FactTable& SetAll(std::string_view assignments);
  FactTable& SetValue(std::string_view path, Value value);

  const Value* slots() const { return slots_.data(); }
  uint32_t SlotOf(std::string_view path) const;

 private:
  std::vector<Value> slots_;
  // Own the strings and lists the slot values point into.
  std::vector<std::unique_ptr<Program>> literals_;
};

// Compiles `text` against TestDeclarations() (with `defines` if given);
// fails the current test on issues.
std::unique_ptr<Program> MustCompile(std::string_view text,
                                     const Defines* defines = nullptr);

// The issues of compiling `text` as a rule condition (expected bool,
// never-true rejection on), each as "line:column: message".
std::vector<std::string> ConditionIssues(std::string_view text,
                                         const Defines* defines = nullptr);

std::string FormatIssue(const Issue& issue);

}  // namespace stepwise::expr::testing

#endif  // STEPWISE_TESTS_ENGINE_EXPR_TEST_FACTS_H_

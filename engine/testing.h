// Running a bundle's own test cases and measuring rule coverage
// (`stepwise test`, ValidateRuleset, ReloadRuleset).
#ifndef STEPWISE_ENGINE_TESTING_H_
#define STEPWISE_ENGINE_TESTING_H_

#include <string>
#include <vector>

#include "engine/bundle.h"

namespace stepwise::engine {

struct CaseResult {
  std::string name;
  std::string file;
  int line = 0;
  bool passed = false;
  // Expected vs actual, one difference per line, when the case failed.
  std::string diff;
};

struct RuleCoverage {
  std::string rule_id;
  int fired = 0;  // cases in which the rule matched
};

struct TestReport {
  std::vector<CaseResult> cases;
  std::vector<RuleCoverage> coverage;  // in rule order
  int passed = 0;
  int failed = 0;

  bool ok() const { return failed == 0; }
  // Percentage of rules fired by at least one case (100 with no rules).
  double coverage_percent() const;
  std::vector<std::string> uncovered() const;
};

TestReport RunBundleTests(const Bundle& bundle);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_TESTING_H_

#include "engine/testing.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/compiled_bundle.h"
#include "engine/engine.h"
#include "engine/expr/program.h"
#include "engine/facts.h"

namespace stepwise::engine {

double TestReport::coverage_percent() const {
  if (coverage.empty()) return 100.0;
  const auto fired =
      std::count_if(coverage.begin(), coverage.end(),
                    [](const RuleCoverage& c) { return c.fired > 0; });
  return 100.0 * static_cast<double>(fired) /
         static_cast<double>(coverage.size());
}

std::vector<std::string> TestReport::uncovered() const {
  std::vector<std::string> ids;
  for (const RuleCoverage& c : coverage) {
    if (c.fired == 0) ids.push_back(c.rule_id);
  }
  return ids;
}

namespace {

std::string List(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return absl::StrCat("[", absl::StrJoin(ids, ", "), "]");
}

template <typename Repeated>
std::vector<std::string> Strings(const Repeated& repeated) {
  return std::vector<std::string>(repeated.begin(), repeated.end());
}

void CompareList(absl::string_view what, std::vector<std::string> expected,
                 std::vector<std::string> actual, std::string* diff) {
  std::sort(expected.begin(), expected.end());
  std::sort(actual.begin(), actual.end());
  if (expected != actual) {
    absl::StrAppend(diff, what, ": expected ", List(expected), ", got ",
                    List(actual), "\n");
  }
}

void CompareWarnings(const TestCase& tc, const v1::Decision& d,
                     std::string* diff) {
  if (tc.warnings && *tc.warnings != d.warnings_size()) {
    absl::StrAppend(diff, "warnings: expected ", *tc.warnings, ", got ",
                    d.warnings_size(), " [", absl::StrJoin(d.warnings(), "; "),
                    "]\n");
  }
}

bool Same(const ExpectedFact& want, const expr::Value& got) {
  switch (want.kind) {
    case ExpectedFact::Kind::kAbsent:
      return got.tag == expr::Tag::kAbsent;
    case ExpectedFact::Kind::kBool:
      return got.tag == expr::Tag::kBool && got.b == want.b;
    case ExpectedFact::Kind::kInt:
      return got.tag == expr::Tag::kInt && got.i == want.i;
    case ExpectedFact::Kind::kDouble:
      return got.tag == expr::Tag::kDouble && got.d == want.d;
    case ExpectedFact::Kind::kString:
      return got.tag == expr::Tag::kString && got.s != nullptr &&
             *got.s == want.s;
  }
  return false;
}

std::string Describe(const expr::Value& value) {
  return value.tag == expr::Tag::kAbsent ? "absent" : expr::FormatValue(value);
}

std::string Describe(const ExpectedFact& want) {
  switch (want.kind) {
    case ExpectedFact::Kind::kAbsent:
      return Describe(expr::Value::Absent());
    case ExpectedFact::Kind::kBool:
      return Describe(expr::Value::Bool(want.b));
    case ExpectedFact::Kind::kInt:
      return Describe(expr::Value::Int(want.i));
    case ExpectedFact::Kind::kDouble:
      return Describe(expr::Value::Double(want.d));
    case ExpectedFact::Kind::kString:
      return Describe(expr::Value::String(&want.s));
  }
  return "?";
}

// Derives the request's facts again (Evaluate keeps them to itself) and
// compares the ones the case names, in the order it names them.
void CompareFacts(const Bundle& bundle, const TestCase& tc, std::string* diff) {
  const CompiledBundle& compiled = bundle.compiled();
  FactTable table(compiled);
  std::vector<FieldViolation> violations;
  std::vector<std::string> warnings;
  if (!DeriveFacts(compiled, tc.request,
                   ResolveAsOf(tc.request, absl::UnixEpoch()), &table,
                   &violations, &warnings)) {
    absl::StrAppend(diff, "facts: the request was rejected\n");
    return;
  }
  for (const ExpectedFact& want : tc.facts) {
    const expr::Value& got = table.slots()[want.slot];
    if (!Same(want, got)) {
      absl::StrAppend(diff, "facts.", want.path, ": expected ", Describe(want),
                      ", got ", Describe(got), "\n");
    }
  }
}

}  // namespace

TestReport RunBundleTests(const Bundle& bundle) {
  TestReport report;
  std::map<std::string, int> fired;
  for (const RuleSummary& rule : bundle.rules()) fired[rule.id] = 0;

  for (const TestCase& tc : bundle.tests()) {
    CaseResult cr;
    cr.name = tc.name;
    cr.file = tc.file;
    cr.line = tc.line;
    // Test requests carry as_of (the loader insists), so the clock never
    // enters a test.
    const EvaluationResult result = Evaluate(
        bundle, tc.request, ResolveAsOf(tc.request, absl::UnixEpoch()));
    std::string diff;
    if (!tc.violations.empty()) {
      std::set<std::string> fields;
      std::vector<std::string> described;
      for (const FieldViolation& v : result.violations) {
        fields.insert(v.field);
        described.push_back(absl::StrCat(v.field, ": ", v.description));
      }
      for (const std::string& field : tc.violations) {
        if (fields.count(field) == 0) {
          absl::StrAppend(&diff, "violations: expected one at ", field,
                          ", got ",
                          described.empty() ? "none (the request was accepted)"
                                            : absl::StrJoin(described, "; "),
                          "\n");
        }
      }
    } else if (!result.ok()) {
      for (const FieldViolation& v : result.violations) {
        absl::StrAppend(&diff, "request rejected: ", v.field, ": ",
                        v.description, "\n");
      }
    } else {
      const v1::Decision& d = result.decision;
      for (const v1::MatchedRule& m : d.matched_rules()) ++fired[m.rule_id()];
      if (d.action() != tc.action) {
        absl::StrAppend(&diff, "action: expected ", v1::Action_Name(tc.action),
                        ", got ", v1::Action_Name(d.action()), "\n");
      }
      if (d.recommended_step() != tc.step) {
        absl::StrAppend(&diff, "step: expected ", tc.step, ", got ",
                        d.recommended_step(), "\n");
      }
      std::vector<std::string> matched;
      for (const v1::MatchedRule& m : d.matched_rules())
        matched.push_back(m.rule_id());
      CompareList("matched", tc.matched, matched, &diff);
      if (tc.refer_to)
        CompareList("refer_to", *tc.refer_to, Strings(d.refer_to()), &diff);
      if (tc.unevaluated) {
        std::vector<std::string> undecided;
        for (const v1::UnevaluatedRule& u : d.unevaluated_rules()) {
          undecided.push_back(u.rule_id());
        }
        CompareList("unevaluated", *tc.unevaluated, undecided, &diff);
      }
      CompareWarnings(tc, d, &diff);
    }
    if (result.ok() && !tc.facts.empty()) {
      CompareFacts(bundle, tc, &diff);
    }
    cr.passed = diff.empty();
    cr.diff = std::move(diff);
    (cr.passed ? report.passed : report.failed)++;
    report.cases.push_back(std::move(cr));
  }
  for (const RuleSummary& rule : bundle.rules()) {
    report.coverage.push_back(RuleCoverage{rule.id, fired[rule.id]});
  }
  return report;
}

}  // namespace stepwise::engine

#include "tests/engine/expr/test_facts.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"

namespace stepwise::expr::testing {
namespace {

struct Builder {
  Declarations decls;
  uint32_t next = 0;

  void Fact(const std::string& path, Type type,
            std::optional<double> min = std::nullopt,
            std::optional<double> max = std::nullopt,
            std::vector<std::string> allowed = {}) {
    FactDecl d;
    d.slot = next++;
    d.type = type;
    d.min = min;
    d.max = max;
    d.allowed_values = std::move(allowed);
    decls.AddFact(path, std::move(d));
  }
  void Group(const std::string& path) { decls.AddGroup(path, next++); }
};

Declarations Build() {
  Builder b;
  const std::vector<std::string> severities = {"none", "mild", "moderate",
                                               "moderately severe", "severe"};
  b.Group("phq9");
  b.Group("gad7");
  b.Group("cssrs");
  b.Group("previous.phq9");
  b.Group("baseline.phq9");
  b.Fact("phq9.total", Type::Int(), 0, 27);
  for (int i = 1; i <= 9; ++i) {
    b.Fact(absl::StrCat("phq9.item", i), Type::Int(), 0, 3);
  }
  b.Fact("phq9.severity", Type::String(), std::nullopt, std::nullopt,
         severities);
  b.Fact("phq9.caseness", Type::Bool());
  b.Fact("phq9.days_since", Type::Double(), 0.0);
  b.Fact("phq9.count", Type::Int(), 1);
  b.Fact("phq9.change", Type::Int(), -27, 27);
  b.Fact("phq9.pct_change", Type::Double(), -1.0);
  b.Fact("phq9.reliable_deterioration", Type::Bool());
  b.Fact("previous.phq9.total", Type::Int(), 0, 27);
  b.Fact("baseline.phq9.total", Type::Int(), 0, 27);
  b.Fact("gad7.total", Type::Int(), 0, 21);
  b.Fact("gad7.reliable_deterioration", Type::Bool());
  b.Fact("gad7.severity", Type::String(), std::nullopt, std::nullopt,
         {"none", "mild", "moderate", "severe"});
  for (int i = 1; i <= 5; ++i) {
    b.Fact(absl::StrCat("cssrs.q", i), Type::Int(), 0, 1);
  }
  b.Fact("cssrs.q6", Type::Int(), 0, 2);
  b.Fact("cssrs.days_since", Type::Double(), 0.0);
  b.Fact("current_step", Type::Int(), 1, 4);
  b.Fact("weeks_at_step", Type::Double(), 0.0);
  b.Fact("flags", Type::List(Kind::kString), std::nullopt, std::nullopt,
         {"clinician_risk_concern", "red_flag",
          "new_or_changed_physical_symptoms"});
  b.Fact("n", Type::Int());
  b.Fact("m", Type::Int());
  b.Fact("d", Type::Double());
  b.Fact("e", Type::Double());
  b.Fact("s", Type::String());
  b.Fact("t", Type::String());
  b.Fact("b", Type::Bool());
  b.Fact("c", Type::Bool());
  b.Fact("ints", Type::List(Kind::kInt));
  b.Fact("doubles", Type::List(Kind::kDouble));
  return std::move(b.decls);
}

}  // namespace

const Declarations& TestDeclarations() {
  static const auto* decls = new Declarations(Build());
  return *decls;
}

FactTable::FactTable()
    : slots_(TestDeclarations().slot_count(), Value::Absent()) {}

uint32_t FactTable::SlotOf(std::string_view path) const {
  const Declarations& decls = TestDeclarations();
  if (const FactDecl* d = decls.FindFact(path)) return d->slot;
  if (const auto g = decls.FindGroup(path)) return *g;
  ADD_FAILURE() << "no fact or group " << path;
  return 0;
}

FactTable& FactTable::SetValue(std::string_view path, Value value) {
  slots_[SlotOf(path)] = value;
  return *this;
}

FactTable& FactTable::Set(std::string_view path, std::string_view literal) {
  auto result = Compile(literal, Declarations(), CompileOptions());
  if (!result.ok() || result->program == nullptr) {
    ADD_FAILURE() << "bad literal " << literal;
    return *this;
  }
  SetValue(path, result->program->Evaluate(nullptr));
  literals_.push_back(std::move(result->program));
  return *this;
}

namespace {
std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}
}  // namespace

FactTable& FactTable::SetAll(std::string_view assignments) {
  while (!assignments.empty()) {
    const size_t end = std::min(assignments.find(';'), assignments.size());
    const std::string_view part = Trim(assignments.substr(0, end));
    assignments.remove_prefix(std::min(end + 1, assignments.size()));
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      ADD_FAILURE() << "bad assignment " << part;
      continue;
    }
    Set(Trim(part.substr(0, eq)), Trim(part.substr(eq + 1)));
  }
  return *this;
}

std::string FormatIssue(const Issue& issue) {
  return absl::StrCat(issue.line, ":", issue.column, ": ", issue.message);
}

std::unique_ptr<Program> MustCompile(std::string_view text,
                                     const Defines* defines) {
  CompileOptions options;
  options.defines = defines;
  auto result = Compile(text, TestDeclarations(), options);
  if (!result.ok()) {
    ADD_FAILURE() << result.status();
    return nullptr;
  }
  for (const Issue& issue : result->issues) {
    ADD_FAILURE() << text << ": " << FormatIssue(issue);
  }
  return std::move(result->program);
}

std::vector<std::string> ConditionIssues(std::string_view text,
                                         const Defines* defines) {
  CompileOptions options;
  options.defines = defines;
  options.expected = Type::Bool();
  options.reject_never_true = true;
  auto result = Compile(text, TestDeclarations(), options);
  std::vector<std::string> out;
  if (!result.ok()) {
    out.push_back(std::string(result.status().message()));
    return out;
  }
  for (const Issue& issue : result->issues) out.push_back(FormatIssue(issue));
  EXPECT_EQ(result->program == nullptr, !out.empty());
  return out;
}

}  // namespace stepwise::expr::testing

// The rule author's verbs: lint, test, eval, expr (architecture §6).
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "engine/testing.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

void RunLint(const std::string& dir, int* exit_code) {
  auto bundle = LoadBundleOrReport(dir, std::cout, exit_code);
  if (!bundle) return;
  std::cout << "ok: " << bundle->name() << " " << bundle->version() << ", "
            << bundle->rules().size() << " rules, " << bundle->tests().size()
            << " test cases, sha256 " << bundle->sha256() << "\n";
  *exit_code = kExitOk;
}

void RunTest(const std::string& dir, double fail_under, bool verbose,
             int* exit_code) {
  auto bundle = LoadBundleOrReport(dir, std::cout, exit_code);
  if (!bundle) return;
  const engine::TestReport report = engine::RunBundleTests(*bundle);
  for (const engine::CaseResult& c : report.cases) {
    if (c.passed) {
      if (verbose) std::cout << "PASS " << c.name << "\n";
      continue;
    }
    std::cout << "FAIL " << c.name << " (" << dir << "/" << c.file << ":"
              << c.line << ")\n";
    for (absl::string_view line :
         absl::StrSplit(c.diff, '\n', absl::SkipEmpty())) {
      std::cout << "     " << line << "\n";
    }
  }
  std::cout << "\nrule coverage:\n";
  size_t width = 4;
  for (const engine::RuleCoverage& r : report.coverage)
    width = std::max(width, r.rule_id.size());
  for (const engine::RuleCoverage& r : report.coverage) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width))
              << r.rule_id << "  "
              << (r.fired > 0 ? absl::StrCat("fired in ", r.fired, " case",
                                             r.fired == 1 ? "" : "s")
                              : std::string("NEVER FIRED"))
              << "\n";
  }
  const double coverage = report.coverage_percent();
  std::cout << absl::StrFormat(
      "\n%d cases passed, %d failed; rule coverage %.1f%%", report.passed,
      report.failed, coverage);
  const std::vector<std::string> uncovered = report.uncovered();
  if (!uncovered.empty())
    std::cout << " (never fired: " << absl::StrJoin(uncovered, ", ") << ")";
  std::cout << "\n";
  if (!report.ok()) {
    *exit_code = kExitCheckFailed;
  } else if (coverage + 1e-9 < fail_under) {
    std::cout << absl::StrFormat(
        "coverage %.1f%% is under --fail-under %.1f%%\n", coverage, fail_under);
    *exit_code = kExitCheckFailed;
  } else {
    *exit_code = kExitOk;
  }
}

// Reads and parses a request file; prints the problem and returns false.
bool ReadRequest(const std::string& path, v1::EvaluateRequest* request,
                 int* exit_code) {
  absl::StatusOr<std::string> json = ReadFile(path);
  if (!json.ok()) {
    std::cerr << "stepwise: " << json.status().message() << "\n";
    *exit_code = kExitUsage;
    return false;
  }
  absl::StatusOr<v1::EvaluateRequest> parsed = ParseRequestJson(*json);
  if (!parsed.ok()) {
    std::cout << "bad request: " << path << ": " << parsed.status().message()
              << "\n";
    *exit_code = kExitCheckFailed;
    return false;
  }
  *request = *std::move(parsed);
  return true;
}

void PrintViolations(const std::vector<engine::FieldViolation>& violations) {
  std::cout << "bad request: " << violations.size() << " violation"
            << (violations.size() == 1 ? "" : "s") << "\n";
  for (const engine::FieldViolation& v : violations) {
    std::cout << "  " << v.field << ": " << v.description << "\n";
  }
}

void RunEval(const std::string& dir, const std::string& request_path,
             bool explain, int* exit_code) {
  auto bundle = LoadBundleOrReport(dir, std::cout, exit_code);
  if (!bundle) return;
  v1::EvaluateRequest request;
  if (!ReadRequest(request_path, &request, exit_code)) return;
  const absl::Time now = absl::Now();
  engine::EvaluateOptions options;
  options.explain = explain;
  engine::EvaluationResult result =
      engine::Evaluate(*bundle, request, now, options);
  if (!result.ok()) {
    PrintViolations(result.violations);
    *exit_code = kExitCheckFailed;
    return;
  }
  v1::Decision& decision = result.decision;
  if (!explain) decision.clear_unevaluated_rules();
  const int64_t seconds = absl::ToUnixSeconds(now);
  decision.mutable_evaluated_at()->set_seconds(seconds);
  decision.mutable_evaluated_at()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(now - absl::FromUnixSeconds(seconds))));
  std::cout << ToJson(decision);
  *exit_code = kExitOk;
}

void RunExpr(const std::string& text, const std::string& request_path,
             const std::string& dir, int* exit_code) {
  auto bundle = LoadBundleOrReport(dir, std::cout, exit_code);
  if (!bundle) return;
  v1::EvaluateRequest request;
  const bool has_request = !request_path.empty();
  if (has_request && !ReadRequest(request_path, &request, exit_code)) return;
  engine::ExpressionResult result = engine::EvaluateExpression(
      *bundle, text, has_request ? &request : nullptr, absl::Now());
  if (!result.issues.empty()) {
    const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
    for (const expr::Issue& issue : result.issues) {
      std::cout << "<expr>:" << issue.line << ":" << issue.column << ": "
                << issue.message << "\n";
      if (issue.line >= 1 && static_cast<size_t>(issue.line) <= lines.size()) {
        std::cout << "  " << lines[issue.line - 1] << "\n  "
                  << std::string(
                         static_cast<size_t>(std::max(issue.column - 1, 0)),
                         ' ')
                  << "^\n";
      }
    }
    *exit_code = kExitUsage;
    return;
  }
  if (!result.violations.empty()) {
    PrintViolations(result.violations);
    *exit_code = kExitCheckFailed;
    return;
  }
  if (!result.error.empty()) {
    std::string escaped;
    for (char c : result.error) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    std::cout << "{\"error\": \"" << escaped << "\"}\n";
    *exit_code = kExitCheckFailed;
    return;
  }
  std::cout << "{\"type\": \"" << result.type
            << "\", \"value\": " << result.json_value << "}\n";
  *exit_code = kExitOk;
}

void RegisterEngineCommands(CLI::App& app, int* exit_code) {
  {
    auto* cmd = app.add_subcommand(
        "lint", "Load and validate a bundle; errors as file:line:column");
    auto* dir = Keep<std::string>();
    cmd->add_option("BUNDLE", *dir, "bundle folder")->required();
    cmd->callback([=] { RunLint(*dir, exit_code); });
  }
  {
    auto* cmd = app.add_subcommand(
        "test", "Run a bundle's test cases and report rule coverage");
    auto* dir = Keep<std::string>();
    auto* fail_under = Keep<double>(0);
    auto* verbose = Keep<bool>(false);
    cmd->add_option("BUNDLE", *dir, "bundle folder")->required();
    cmd->add_option(
           "--fail-under", *fail_under,
           "fail when fewer than this percentage of rules fire in some case")
        ->check(CLI::Range(0.0, 100.0));
    cmd->add_flag("-v,--verbose", *verbose, "list passing cases too");
    cmd->callback([=] { RunTest(*dir, *fail_under, *verbose, exit_code); });
  }
  {
    auto* cmd = app.add_subcommand(
        "eval", "Evaluate one request locally; print the Decision as JSON");
    auto* dir = Keep<std::string>();
    auto* request = Keep<std::string>();
    auto* explain = Keep<bool>(false);
    cmd->add_option("BUNDLE", *dir, "bundle folder")->required();
    cmd->add_option("REQUEST", *request, "EvaluateRequest as JSON")->required();
    cmd->add_flag(
        "--explain", *explain,
        "add the undecided rules and every rule's outcome with its values");
    cmd->callback([=] { RunEval(*dir, *request, *explain, exit_code); });
  }
  {
    auto* cmd = app.add_subcommand(
        "expr",
        "Evaluate one expression over a request's facts (for rule authors)");
    auto* text = Keep<std::string>();
    auto* request = Keep<std::string>();
    auto* dir = Keep<std::string>();
    cmd->add_option("EXPR", *text,
                    "the expression (one that starts with '-' goes after "
                    "'--': stepwise expr -- '-phq9.change > 2')")
        ->required();
    cmd->add_option("--request", *request,
                    "EvaluateRequest as JSON (default: no facts)");
    cmd->add_option("--bundle", *dir,
                    "bundle folder (default: the default bundle)");
    cmd->callback([=] {
      RunExpr(*text, *request,
              dir->empty() ? DefaultBundleDir().string() : *dir, exit_code);
    });
  }
}

STEPWISE_REGISTER_COMMANDS(RegisterEngineCommands);

}  // namespace
}  // namespace stepwise::tools

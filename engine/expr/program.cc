#include "engine/expr/program.h"

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/expr/ast.h"
#include "engine/expr/checker.h"
#include "engine/expr/compiler.h"
#include "engine/expr/never_true.h"
#include "engine/expr/parser.h"
#include "engine/expr/plan.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

bool IsIdentifier(std::string_view name) {
  if (name.empty()) return false;
  const auto start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!start(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return start(c) || (c >= '0' && c <= '9');
  });
}

bool IsReservedName(std::string_view name) {
  static constexpr std::array<std::string_view, 21> kWords = {
      "true",     "false",   "null",      "in",       "as",  "break",  "const",
      "continue", "else",    "for",       "function", "if",  "import", "let",
      "loop",     "package", "namespace", "return",   "var", "void",   "while"};
  return std::find(kWords.begin(), kWords.end(), name) != kWords.end();
}

const std::string& EmptyString() {
  static const auto* empty = new std::string();
  return *empty;
}

}  // namespace

// ---------------------------------------------------------------- Defines

Defines::Defines() : impl_(std::make_unique<Impl>()) {}
Defines::~Defines() = default;
Defines::Defines(Defines&&) noexcept = default;
Defines& Defines::operator=(Defines&&) noexcept = default;

bool Defines::Add(const std::string& name, std::string_view text,
                  const Declarations& decls, const Limits& limits,
                  std::vector<Issue>* issues) {
  if (impl_ == nullptr) impl_ = std::make_unique<Impl>();
  const auto fail = [&](std::string message) {
    Issue issue;
    issue.message = std::move(message);
    issues->push_back(std::move(issue));
    return false;
  };
  if (!IsIdentifier(name)) {
    return fail(absl::StrCat("'", name,
                             "' is not a valid define name (letters, digits "
                             "and '_', not starting with a digit)"));
  }
  if (IsReservedName(name)) {
    return fail(absl::StrCat("'", name, "' is a reserved word, not a name"));
  }
  if (impl_->Find(name) != nullptr) {
    return fail(absl::StrCat("'", name, "' is defined twice"));
  }
  if (decls.FindFact(name) != nullptr) {
    return fail(absl::StrCat("the define '", name, "' would hide the fact '",
                             name, "'"));
  }
  if (decls.FindGroup(name).has_value()) {
    return fail(absl::StrCat("the define '", name,
                             "' would hide the instrument '", name, "'"));
  }
  auto entry = std::make_unique<DefineEntry>();
  entry->name = name;
  entry->index = static_cast<int>(impl_->entries.size());
  if (!Parse(text, limits, &entry->ast, issues)) return false;
  if (!Check(&entry->ast, decls, impl_.get(), limits, /*is_define=*/true,
             issues)) {
    return false;
  }
  const AstNode& root = entry->ast.node(entry->ast.root);
  entry->type = root.type;
  entry->reads_facts = root.reads_facts;
  impl_->by_name.emplace(name, entry.get());
  impl_->entries.push_back(std::move(entry));
  return true;
}

bool Defines::Contains(std::string_view name) const {
  return impl_ != nullptr && impl_->Find(name) != nullptr;
}

std::vector<std::pair<std::string, std::string>> Defines::Texts() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (impl_ == nullptr) return out;
  for (const auto& entry : impl_->entries) {
    out.emplace_back(entry->name, entry->ast.source);
  }
  return out;
}

// ---------------------------------------------------------------- Program

const std::string& Program::Impl::SlotPath(uint32_t slot) const {
  auto it = std::lower_bound(slot_paths.begin(), slot_paths.end(), slot,
                             [](const std::pair<uint32_t, std::string>& e,
                                uint32_t s) { return e.first < s; });
  if (it == slot_paths.end() || it->first != slot) return EmptyString();
  return it->second;
}

Program::Program(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Program::~Program() = default;

Type Program::type() const { return impl_->type; }
const std::string& Program::source() const { return impl_->source; }
const std::vector<uint32_t>& Program::slots_read() const {
  return impl_->slots_read;
}

// Program::Evaluate is defined in eval.cc, beside the evaluator it inlines.

Value Program::Explain(const Value* slots, Explanation* out) const {
  const Value result = Evaluate(slots);
  if (out != nullptr) ExplainPlan(*impl_, slots, out);
  return result;
}

void Program::ExplainText(const Value* slots, std::string* out) const {
  expr::ExplainText(*impl_, slots, out);
}

void Program::ExplainParts(const Value* slots, std::string* text,
                           ExplainedCauses* causes) const {
  expr::ExplainParts(*impl_, slots, text, causes);
}

void Program::ExplainCauses(const Value* slots,
                            std::vector<std::string>* missing_facts,
                            std::vector<std::string>* errors) const {
  expr::ExplainCauses(*impl_, slots, missing_facts, errors);
}

absl::StatusOr<CompileResult> Compile(std::string_view text,
                                      const Declarations& decls,
                                      const CompileOptions& options) {
  CompileResult result;
  Ast ast;
  if (!Parse(text, options.limits, &ast, &result.issues)) return result;
  const Defines::Impl* defines =
      options.defines != nullptr ? options.defines->impl() : nullptr;
  if (!Check(&ast, decls, defines, options.limits, /*is_define=*/false,
             &result.issues)) {
    return result;
  }
  const AstNode& root = ast.node(ast.root);
  bool to_double = false;
  if (options.expected.has_value() && !(root.type == *options.expected)) {
    if (options.expected->kind == Kind::kDouble &&
        root.type.kind == Kind::kInt) {
      to_double = true;
    } else {
      const bool condition = options.expected->kind == Kind::kBool;
      result.issues.push_back(
          IssueAt(ast.source, root.begin,
                  absl::StrCat(condition ? "condition" : "the expression",
                               " must be ", options.expected->ToString(),
                               ", not ", root.type.ToString())));
      return result;
    }
  }
  if (options.reject_never_true && root.type.kind == Kind::kBool) {
    ReportNeverTrue(ast, &result.issues);
    if (!result.issues.empty()) return result;
  }
  auto impl = std::make_unique<Program::Impl>();
  impl->source = std::string(text);
  impl->type = to_double ? Type::Double() : root.type;
  CompilePlan(ast, to_double, impl.get());
  PrepareExplanations(impl.get());
  result.program.reset(new Program(std::move(impl)));
  return result;
}

}  // namespace stepwise::expr

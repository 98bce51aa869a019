#include "engine/diagnostic.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace stepwise::engine {

std::string Diagnostic::ToString() const {
  if (line <= 0) return absl::StrCat(file, ": ", message);
  return absl::StrCat(file, ":", line, ":", column, ": ", message);
}

std::string FormatDiagnostics(std::vector<Diagnostic> diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.file, a.line, a.column) <
                            std::tie(b.file, b.line, b.column);
                   });
  std::string out;
  for (const Diagnostic& d : diagnostics) absl::StrAppend(&out, d.ToString(), "\n");
  return out;
}

}  // namespace stepwise::engine

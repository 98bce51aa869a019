// A mistake in a bundle, at a place in a file: what the loader, the linter
// and `stepwise lint` report.
#ifndef STEPWISE_ENGINE_DIAGNOSTIC_H_
#define STEPWISE_ENGINE_DIAGNOSTIC_H_

#include <string>
#include <vector>

namespace stepwise::engine {

struct Diagnostic {
  std::string file;  // relative to the bundle folder, e.g. "ruleset.yaml"
  int line = 0;      // 1-based; 0 when the mistake is about the whole file
  int column = 0;    // 1-based
  std::string message;

  // "ruleset.yaml:12:9: unknown identifier 'phq9.totl' (did you mean
  // 'phq9.total'?)"
  std::string ToString() const;
};

// Sorted by file, line, column; one per line.
std::string FormatDiagnostics(std::vector<Diagnostic> diagnostics);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_DIAGNOSTIC_H_

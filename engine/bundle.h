// Loading a rule bundle (docs/bundle-format.md): a folder of YAML files ->
// an immutable, compiled Bundle with its sha256, or every mistake found, each
// at file:line:column.
#ifndef STEPWISE_ENGINE_BUNDLE_H_
#define STEPWISE_ENGINE_BUNDLE_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/diagnostic.h"
#include "engine/options.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {

class CompiledBundle;  // internal: instruments, fact layout, compiled rules

// Relative path ("instruments/phq9.yaml") -> file bytes.
using BundleFiles = std::map<std::string, std::string>;

struct RuleSummary {
  std::string id;
  std::string title;
  v1::Action action = v1::ACTION_UNSPECIFIED;
  std::string when;  // the condition as written
  std::string file;
  int line = 0;
};

// A fact a test case expects its request to yield (`expect.facts`): a
// declared fact ("phq9.severity") or a group's presence ("has(baseline.phq9)").
struct ExpectedFact {
  std::string path;  // as written
  uint32_t slot = 0;
  // What is expected. kAbsent: the fact must be absent (`null` in YAML).
  enum class Kind {
    kAbsent,
    kBool,
    kInt,
    kDouble,
    kString
  } kind = Kind::kAbsent;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
};

// One test case of the bundle, parsed at load.
struct TestCase {
  std::string name;
  std::string file;
  int line = 0;
  v1::EvaluateRequest request;
  // Expected outcome; `violations` non-empty means the request must be
  // rejected with (at least) these field paths.
  v1::Action action = v1::ACTION_UNSPECIFIED;
  int step = 0;
  std::vector<std::string> matched;
  std::optional<std::vector<std::string>> refer_to;
  std::optional<std::vector<std::string>> unevaluated;
  std::optional<int> warnings;
  std::vector<ExpectedFact> facts;  // checked beside the outcome
  std::vector<std::string> violations;
  std::string note;
};

class Bundle {
 public:
  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::string& name() const;
  const std::string& version() const;
  const std::string& sha256() const;  // lowercase hex
  const std::string& approved_by() const;
  std::optional<absl::Time> effective_from() const;
  int max_step() const;
  const std::map<int, std::string>& steps() const;
  const std::vector<RuleSummary>& rules() const;
  const std::vector<TestCase>& tests() const;
  const BundleFiles& files() const;
  // Built once at load: every Decision copies it.
  const v1::RulesetRef& ref() const;

  const CompiledBundle& compiled() const { return *compiled_; }

 private:
  friend class BundleBuilder;
  explicit Bundle(std::unique_ptr<CompiledBundle> compiled);
  std::unique_ptr<CompiledBundle> compiled_;
  v1::RulesetRef ref_;
};

struct LoadResult {
  // Null iff `diagnostics` is non-empty.
  std::shared_ptr<const Bundle> bundle;
  std::vector<Diagnostic> diagnostics;

  bool ok() const { return bundle != nullptr; }
};

// Reads the bundle's YAML files. I/O failures (no such folder, unreadable
// file, file over options.max_file_bytes) are statuses; a misplaced YAML file
// is reported later as a diagnostic by CompileBundle.
absl::StatusOr<BundleFiles> ReadBundleFiles(const std::filesystem::path& dir,
                                            const EngineOptions& options = {});

// Compiles files already in memory (e.g. a bundle sent inline).
LoadResult CompileBundle(const BundleFiles& files,
                         const EngineOptions& options = {});

// ReadBundleFiles + CompileBundle.
absl::StatusOr<LoadResult> LoadBundle(const std::filesystem::path& dir,
                                      const EngineOptions& options = {});

// sha256 of the files as docs/bundle-format.md defines it, lowercase hex.
std::string BundleSha256(const BundleFiles& files);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_BUNDLE_H_

// Internal: reading bundle YAML with positions. The only place (with
// bundle.cc) that sees yaml-cpp; its exceptions are caught here and become
// Diagnostics at the mark's line and column.
#ifndef STEPWISE_ENGINE_YAML_UTIL_H_
#define STEPWISE_ENGINE_YAML_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/diagnostic.h"
#include "yaml-cpp/yaml.h"

namespace stepwise::engine {

// One YAML file of a bundle and the diagnostics found in it.
class YamlFile {
 public:
  YamlFile(std::string path, const std::string& text, std::vector<Diagnostic>* out);

  const std::string& path() const { return path_; }

  // Parses the file; on a syntax error reports it and returns nullopt.
  std::optional<YAML::Node> Parse();

  void Error(const YAML::Mark& mark, std::string message);
  void Error(const YAML::Node& node, std::string message) { Error(node.Mark(), std::move(message)); }
  // For a mistake about the whole file.
  void FileError(std::string message);

  // Checks that `node` is a map whose keys are all in `allowed` and that
  // every key in `required` is present (and not duplicated). `what` names
  // the map in messages ("rule", "instrument").
  bool CheckMap(const YAML::Node& node, absl::string_view what,
                std::initializer_list<absl::string_view> allowed,
                std::initializer_list<absl::string_view> required);

  std::optional<std::string> String(const YAML::Node& node, absl::string_view what);
  std::optional<int64_t> Int(const YAML::Node& node, absl::string_view what,
                             int64_t min, int64_t max);
  std::optional<bool> Bool(const YAML::Node& node, absl::string_view what);
  std::optional<std::vector<std::string>> StringList(const YAML::Node& node,
                                                     absl::string_view what);

  // Source position of the character at `offset` in the value of scalar
  // `node` (after YAML unquoting/folding), best effort for multi-line
  // scalars. Returns 1-based {line, column}.
  std::pair<int, int> ScalarPosition(const YAML::Node& node, size_t offset) const;

  // Converts a YAML subtree to JSON text: plain scalars that look like
  // numbers, booleans or null become those; everything else a string.
  static void ToJson(const YAML::Node& node, std::string* out);

 private:
  std::string path_;
  const std::string& text_;
  std::vector<Diagnostic>* out_;
  std::vector<size_t> line_starts_;
};

// Offset of 1-based (line, column) inside `text`; clamped to its size.
size_t OffsetOf(absl::string_view text, int line, int column);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_YAML_UTIL_H_

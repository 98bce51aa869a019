// Helpers shared by the `stepwise` verbs: reading a request from a JSON file,
// printing messages as JSON (protobuf JSON mapping), printing diagnostics
// with the source line and a caret under the column.
#ifndef STEPWISE_TOOLS_CLI_UTIL_H_
#define STEPWISE_TOOLS_CLI_UTIL_H_

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/bundle.h"
#include "engine/diagnostic.h"
#include "google/protobuf/message.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::tools {

// Reads a whole file; NOT_FOUND / PERMISSION_DENIED with the path.
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);

// Parses an EvaluateRequest from JSON (lowerCamelCase or proto field names;
// unknown fields are an error). The status message says what is wrong.
absl::StatusOr<v1::EvaluateRequest> ParseRequestJson(const std::string& json);

// The message in protobuf's JSON mapping, indented, ending in a newline.
std::string ToJson(const google::protobuf::Message& message);

// Prints "file:line:col: message", the source line and a caret. `root`
// prefixes file names; `files` supplies the source lines.
void PrintDiagnostics(std::ostream& out, const std::filesystem::path& root,
                      const engine::BundleFiles& files,
                      std::vector<engine::Diagnostic> diagnostics);

// Loads the bundle in `dir` as `stepwise lint` does. When it does not load,
// says why — a folder that cannot be read on stderr; lint diagnostics with
// their source lines on `out`, then "N errors in DIR" and `suffix` — sets
// *exit_code (kExitUsage when the folder does not exist, else
// kExitCheckFailed) and returns null.
std::shared_ptr<const engine::Bundle> LoadBundleOrReport(
    const std::string& dir, std::ostream& out, int* exit_code,
    absl::string_view suffix = "");

// The bundle `stepwise` uses when none is named: $STEPWISE_BUNDLE, else the
// default bundle this build ships.
std::filesystem::path DefaultBundleDir();

}  // namespace stepwise::tools

#endif  // STEPWISE_TOOLS_CLI_UTIL_H_

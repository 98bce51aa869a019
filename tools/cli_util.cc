#include "tools/cli_util.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "tools/commands.h"

namespace stepwise::tools {

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::PermissionDeniedError(
        absl::StrCat(path.string(), ": cannot read"));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<v1::EvaluateRequest> ParseRequestJson(const std::string& json) {
  v1::EvaluateRequest request;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, &request, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an EvaluateRequest in JSON: ", std::string(status.message())));
  }
  return request;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

void PrintDiagnostics(std::ostream& out, const std::filesystem::path& root,
                      const engine::BundleFiles& files,
                      std::vector<engine::Diagnostic> diagnostics) {
  std::stable_sort(
      diagnostics.begin(), diagnostics.end(),
      [](const engine::Diagnostic& a, const engine::Diagnostic& b) {
        return std::tie(a.file, a.line, a.column) <
               std::tie(b.file, b.line, b.column);
      });
  for (engine::Diagnostic d : diagnostics) {
    const auto it = files.find(d.file);
    d.file = (root / d.file).lexically_normal().string();
    out << d.ToString() << "\n";
    if (it == files.end() || d.line <= 0) continue;
    const std::vector<absl::string_view> lines =
        absl::StrSplit(it->second, '\n');
    if (static_cast<size_t>(d.line) > lines.size()) continue;
    const absl::string_view line = lines[d.line - 1];
    out << "  " << line << "\n  "
        << std::string(static_cast<size_t>(std::max(d.column - 1, 0)), ' ')
        << "^\n";
  }
}

std::shared_ptr<const engine::Bundle> LoadBundleOrReport(
    const std::string& dir, std::ostream& out, int* exit_code,
    absl::string_view suffix) {
  absl::StatusOr<engine::BundleFiles> files = engine::ReadBundleFiles(dir);
  if (!files.ok()) {
    std::cerr << "stepwise: " << files.status().message() << "\n";
    *exit_code = files.status().code() == absl::StatusCode::kNotFound
                     ? kExitUsage
                     : kExitCheckFailed;
    return nullptr;
  }
  engine::LoadResult loaded = engine::CompileBundle(*files);
  if (!loaded.ok()) {
    const size_t errors = loaded.diagnostics.size();
    PrintDiagnostics(out, dir, *files, std::move(loaded.diagnostics));
    out << errors << " error" << (errors == 1 ? "" : "s") << " in " << dir
        << suffix << "\n";
    *exit_code = kExitCheckFailed;
    return nullptr;
  }
  return std::move(loaded.bundle);
}

std::filesystem::path DefaultBundleDir() {
  if (const char* env = std::getenv("STEPWISE_BUNDLE");
      env != nullptr && *env != '\0') {
    return env;
  }
  return STEPWISE_DEFAULT_BUNDLE_DIR;
}

}  // namespace stepwise::tools

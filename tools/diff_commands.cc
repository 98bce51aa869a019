// The governance verb: `stepwise diff OLD NEW [--json]`, what changed
// between two rule bundles (docs/diff.md). Differences are a report, not a
// failure: exit 0 whatever they are; 1 when either bundle does not lint;
// 2 for a usage error (including a bundle folder that does not exist).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>

#include "engine/bundle.h"
#include "engine/diff.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

// Loads one side, printing its diagnostics as `stepwise lint` does. Returns
// null and sets *exit_code when it does not load.
std::shared_ptr<const engine::Bundle> LoadSide(const std::string& dir,
                                               int* exit_code) {
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
    PrintDiagnostics(std::cout, dir, *files, loaded.diagnostics);
    std::cout << loaded.diagnostics.size() << " error"
              << (loaded.diagnostics.size() == 1 ? "" : "s") << " in " << dir
              << "\n";
    *exit_code = kExitCheckFailed;
    return nullptr;
  }
  return std::move(loaded.bundle);
}

void RunDiff(const std::string& old_dir, const std::string& new_dir, bool json,
             int* exit_code) {
  // Both sides are loaded before either is judged, so one run shows the
  // mistakes of both.
  int old_exit = kExitOk;
  int new_exit = kExitOk;
  auto old_bundle = LoadSide(old_dir, &old_exit);
  auto new_bundle = LoadSide(new_dir, &new_exit);
  if (!old_bundle || !new_bundle) {
    *exit_code = std::max(old_exit, new_exit);
    return;
  }
  const engine::BundleDiff diff = engine::DiffBundles(*old_bundle, *new_bundle);
  std::cout << (json ? engine::FormatDiffJson(diff)
                     : engine::FormatDiffText(diff));
  *exit_code = kExitOk;
}

void RegisterDiffCommands(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "diff",
      "What changed between two bundles: rules, thresholds, instruments, "
      "metadata (exit 0 whatever the differences)");
  auto* old_dir = Keep<std::string>();
  auto* new_dir = Keep<std::string>();
  auto* json = Keep<bool>(false);
  cmd->add_option("OLD_BUNDLE", *old_dir, "bundle folder now in use")
      ->required();
  cmd->add_option("NEW_BUNDLE", *new_dir, "candidate bundle folder")
      ->required();
  cmd->add_flag("--json", *json,
                "print one JSON object (protobuf JSON mapping) for tools");
  cmd->callback([=] { RunDiff(*old_dir, *new_dir, *json, exit_code); });
}

STEPWISE_REGISTER_COMMANDS(RegisterDiffCommands);

}  // namespace
}  // namespace stepwise::tools

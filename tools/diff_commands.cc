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

void RunDiff(const std::string& old_dir, const std::string& new_dir, bool json,
             int* exit_code) {
  // Both sides are loaded before either is judged, so one run shows the
  // mistakes of both.
  int old_exit = kExitOk;
  int new_exit = kExitOk;
  auto old_bundle = LoadBundleOrReport(old_dir, std::cout, &old_exit);
  auto new_bundle = LoadBundleOrReport(new_dir, std::cout, &new_exit);
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

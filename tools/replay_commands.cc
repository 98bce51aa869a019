// `stepwise replay AUDIT_DIR CANDIDATE_BUNDLE [--json] [--threads N]
// [--limit-changes N]`: every audited decision re-evaluated with its recorded
// as_of under a candidate bundle, and what would change (docs/replay.md).
// Exit 0 when no decision recorded URGENT_SAFETY would lose it, 1 when one
// would (a blocking finding), when the candidate does not lint or when a
// record cannot be read; 2 for a usage error.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "engine/bundle.h"
#include "engine/replay.h"
#include "service/audit/file_system.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/replay_reader.h"

namespace stepwise::tools {
namespace {

struct ReplayFlags {
  std::string audit_dir;
  std::string candidate;
  bool json = false;
  int threads = 0;  // 0: one per core
  uint64_t limit_changes = 50;
};

// Loads the candidate as `stepwise lint` does; prints its diagnostics (on
// stderr with --json, so that stdout stays one JSON object).
std::shared_ptr<const engine::Bundle> LoadCandidate(const ReplayFlags& flags,
                                                    int* exit_code) {
  return LoadBundleOrReport(flags.candidate, flags.json ? std::cerr : std::cout,
                            exit_code,
                            ": the candidate must lint before it is replayed");
}

// A one-line bar on stderr, redrawn in place.
void DrawProgress(uint64_t done, uint64_t total, uint64_t records) {
  constexpr int kWidth = 30;
  const double fraction =
      total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const int filled = std::clamp(static_cast<int>(fraction * kWidth), 0, kWidth);
  std::fprintf(stderr, "\r[%s%s] %3d%%  %llu records",
               std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(),
               static_cast<int>(fraction * 100),
               static_cast<unsigned long long>(records));
  std::fflush(stderr);
}

void RunReplay(const ReplayFlags& flags, int* exit_code) {
  std::shared_ptr<const engine::Bundle> candidate =
      LoadCandidate(flags, exit_code);
  if (!candidate) return;

  ReplayLogOptions options;
  options.threads =
      flags.threads > 0
          ? flags.threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  options.limits.max_listed = flags.limit_changes;
  const bool progress = !flags.json && isatty(STDERR_FILENO) == 1;
  if (progress) options.progress = DrawProgress;

  absl::StatusOr<engine::ReplayReport> report =
      ReplayAuditLog(*service::audit::DefaultFileSystem(), flags.audit_dir,
                     *candidate, options);
  if (progress) std::fprintf(stderr, "\r%*s\r", 60, "");
  if (!report.ok()) {
    std::cerr << "stepwise: " << flags.audit_dir << ": "
              << report.status().message() << "\n";
    *exit_code = kExitCheckFailed;
    return;
  }
  std::cout << (flags.json ? engine::FormatReplayJson(*report)
                           : engine::FormatReplayText(*report));
  *exit_code = report->blocking() > 0 ? kExitCheckFailed : kExitOk;
}

void RegisterReplayCommands(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "replay",
      "Re-evaluate every audited decision under a candidate bundle; report "
      "what "
      "changes (exit 1 if a decision would lose URGENT_SAFETY)");
  // Lives as long as the process: CLI11 writes into it while parsing.
  auto* flags = Keep<ReplayFlags>();
  cmd->add_option("AUDIT_DIR", flags->audit_dir, "audit log folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("CANDIDATE_BUNDLE", flags->candidate,
                  "candidate bundle folder")
      ->required();
  cmd->add_flag("--json", flags->json,
                "print one JSON object (protobuf JSON mapping) for tools");
  cmd->add_option("--threads", flags->threads,
                  "worker threads (default: one per core)")
      ->check(CLI::Range(1, 256));
  cmd->add_option(
         "--limit-changes", flags->limit_changes,
         "list at most N changed decisions, and N blocking findings (0: all)")
      ->capture_default_str();
  cmd->callback([flags, exit_code] { RunReplay(*flags, exit_code); });
}

STEPWISE_REGISTER_COMMANDS(RegisterReplayCommands);

}  // namespace
}  // namespace stepwise::tools

// `stepwise audit verify DIR` and `stepwise audit show [DIR] DECISION_ID`:
// the governance view of the audit log (docs/audit-log.md §6).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "service/audit/audit_cli.h"
#include "service/audit/file_system.h"
#include "service/audit/format.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

namespace audit = ::stepwise::service::audit;

void RegisterAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* group = app.add_subcommand(
      "audit", "Check the audit log's hash chain or show one decision");
  group->require_subcommand(1);

  // Owned by the callbacks, which CLI11 keeps for the life of `app`.
  auto dir = std::make_shared<std::string>();

  CLI::App* verify = group->add_subcommand(
      "verify", "Recompute the whole chain; exit 1 at the first break");
  verify->add_option("DIR", *dir, "The audit log folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  verify->callback([dir, exit_code] {
    *exit_code = audit::RunAuditVerify(*audit::DefaultFileSystem(), *dir,
                                       std::cout, std::cerr);
  });

  // Both forms: `show DECISION_ID` (architecture §6; the folder is
  // --audit-dir, by default the server's) and `show DIR DECISION_ID`.
  auto show_args = std::make_shared<std::vector<std::string>>();
  auto audit_dir = std::make_shared<std::string>();
  CLI::App* show = group->add_subcommand(
      "show", "Print the record of one decision as JSON; exit 1 if none");
  show->add_option("[DIR] DECISION_ID", *show_args,
                   "The decision's id, after the audit log folder if given")
      ->required()
      ->expected(1, 2);
  show->add_option("--audit-dir", *audit_dir,
                   "The audit log folder when only DECISION_ID is given "
                   "(default: stepwise-audit, the server's default)");
  show->callback([show_args, audit_dir, exit_code] {
    std::string dir;
    if (show_args->size() == 2) {
      if (!audit_dir->empty()) {
        throw CLI::ValidationError(
            "DIR", "give the audit folder either as DIR or as --audit-dir");
      }
      dir = (*show_args)[0];
    } else {
      dir = audit_dir->empty() ? std::string(audit::kDefaultAuditDir)
                               : *audit_dir;
    }
    const std::string problem = CLI::ExistingDirectory(dir);
    if (!problem.empty()) throw CLI::ValidationError("DIR", problem);
    *exit_code = audit::RunAuditShow(*audit::DefaultFileSystem(), dir,
                                     show_args->back(), std::cout, std::cerr);
  });
}

}  // namespace

STEPWISE_REGISTER_COMMANDS(RegisterAuditCommands);

}  // namespace stepwise::tools

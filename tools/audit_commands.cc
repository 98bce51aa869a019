// `stepwise audit verify DIR` and `stepwise audit show DIR DECISION_ID`: the
// governance view of the audit log (docs/audit-log.md §6).
#include <iostream>
#include <memory>
#include <string>

#include "service/audit/audit_cli.h"
#include "service/audit/file_system.h"
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
  auto decision_id = std::make_shared<std::string>();

  CLI::App* verify = group->add_subcommand(
      "verify", "Recompute the whole chain; exit 1 at the first break");
  verify->add_option("DIR", *dir, "The audit log folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  verify->callback([dir, exit_code] {
    *exit_code = audit::RunAuditVerify(*audit::DefaultFileSystem(), *dir,
                                       std::cout, std::cerr);
  });

  CLI::App* show = group->add_subcommand(
      "show", "Print the record of one decision as JSON; exit 1 if none");
  show->add_option("DIR", *dir, "The audit log folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  show->add_option("DECISION_ID", *decision_id, "The decision's id")
      ->required();
  show->callback([dir, decision_id, exit_code] {
    *exit_code = audit::RunAuditShow(*audit::DefaultFileSystem(), *dir,
                                     *decision_id, std::cout, std::cerr);
  });
}

}  // namespace

STEPWISE_REGISTER_COMMANDS(RegisterAuditCommands);

}  // namespace stepwise::tools

// The work behind `stepwise audit verify DIR` and `stepwise audit show DIR
// DECISION_ID` (tools/audit_commands.cc wires them to the command line), kept
// here so that they are tested without the binary.
//
// Both return the process exit code: 0 ok, 1 a check failed (broken chain,
// unknown decision, unreadable folder).
#ifndef STEPWISE_SERVICE_AUDIT_AUDIT_CLI_H_
#define STEPWISE_SERVICE_AUDIT_AUDIT_CLI_H_

#include <ostream>
#include <string>

#include "service/audit/file_system.h"

namespace stepwise::service::audit {

// Recomputes the chain. Prints "verified N records" and "head HASH", or
// "DIR/FILE:LINE: seq N: reason" for the first break.
int RunAuditVerify(FileSystem& fs, const std::string& dir, std::ostream& out,
                   std::ostream& err);

// Prints the decision's record as indented JSON.
int RunAuditShow(FileSystem& fs, const std::string& dir,
                 const std::string& decision_id, std::ostream& out,
                 std::ostream& err);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_AUDIT_CLI_H_

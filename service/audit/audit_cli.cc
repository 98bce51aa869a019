#include "service/audit/audit_cli.h"

#include "absl/status/statusor.h"
#include "service/audit/json.h"
#include "service/audit/reader.h"

namespace stepwise::service::audit {
namespace {
constexpr int kOk = 0;
constexpr int kCheckFailed = 1;
}  // namespace

int RunAuditVerify(FileSystem& fs, const std::string& dir, std::ostream& out,
                   std::ostream& err) {
  absl::StatusOr<VerifyResult> result = Verify(fs, dir);
  if (!result.ok()) {
    err << "cannot verify " << dir << ": " << result.status().message() << "\n";
    return kCheckFailed;
  }
  if (!result->ok()) {
    out << JoinPath(dir, result->FirstBreakText()) << "\n"
        << "the chain breaks after " << result->records_checked
        << " good records\n";
    return kCheckFailed;
  }
  out << "verified " << result->records_checked << " records\n"
      << "head " << result->head_hash << "\n";
  return kOk;
}

int RunAuditShow(FileSystem& fs, const std::string& dir,
                 const std::string& decision_id, std::ostream& out,
                 std::ostream& err) {
  absl::StatusOr<FoundRecord> found = FindDecision(fs, dir, decision_id);
  if (!found.ok()) {
    err << found.status().message() << "\n";
    return kCheckFailed;
  }
  out << JsonPretty(found->record.json);
  return kOk;
}

}  // namespace stepwise::service::audit

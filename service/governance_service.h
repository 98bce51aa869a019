// stepwise.v1.GovernanceService on the gRPC callback API: what governance
// staff and auditors ask of a running server (docs/service.md,
// "GovernanceService").
//
//   ValidateRuleset  lint + the candidate's own tests, for a bundle folder on
//                    the server's disk or files sent inline; never activates
//   ReloadRuleset    re-read the configured bundle folder and activate it if
//                    it lints clean, passes its tests and is in effect
//                    (Reloader)
//   GetDecision      one audited decision record by decision_id
//   VerifyAudit      recompute the hash chain up to the newest durable record
//
// Every handler first asks the Authorizer whether the caller holds the
// method's role, exactly like DecisionService; a refusal is UNAUTHENTICATED
// or PERMISSION_DENIED before anything else is looked at. The work itself
// (compiling, running tests, waiting for an activation record, reading the
// log) runs on a WorkQueue, never on gRPC's callback threads.
//
// Ownership: every dependency is borrowed and must outlive the service.
// Thread-safety: the handlers run concurrently on gRPC's threads;
// SetAccepting may be called from any thread.
#ifndef STEPWISE_SERVICE_GOVERNANCE_SERVICE_H_
#define STEPWISE_SERVICE_GOVERNANCE_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "service/audit/audit_log.h"
#include "service/audit/file_system.h"
#include "service/auth/authorizer.h"
#include "service/reloader.h"
#include "service/service_metrics.h"
#include "service/work_queue.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace stepwise::service {

struct GovernanceServiceDeps {
  // Who may call what; required.
  const auth::Authorizer* authorizer = nullptr;
  Reloader* reloader = nullptr;
  // Where the work runs.
  WorkQueue* work = nullptr;
  // The live log (for the newest durable seq) and where to read it back.
  audit::AuditLog* audit = nullptr;
  audit::FileSystem* audit_fs = nullptr;
  std::string audit_dir;
  ServiceMetrics* metrics = nullptr;
  // One line per validation, without a trailing newline. Default: stderr,
  // prefixed "stepwise-server: ".
  std::function<void(const std::string&)> log;
};

class GovernanceService final : public v1::GovernanceService::CallbackService {
 public:
  explicit GovernanceService(GovernanceServiceDeps deps);

  // False while draining: new calls get UNAVAILABLE.
  void SetAccepting(bool accepting) { accepting_.store(accepting); }

  grpc::ServerUnaryReactor* ValidateRuleset(
      grpc::CallbackServerContext* context,
      const v1::ValidateRulesetRequest* request,
      v1::ValidateRulesetResponse* response) override;
  grpc::ServerUnaryReactor* ReloadRuleset(
      grpc::CallbackServerContext* context,
      const v1::ReloadRulesetRequest* request,
      v1::ReloadRulesetResponse* response) override;
  grpc::ServerUnaryReactor* GetDecision(grpc::CallbackServerContext* context,
                                        const v1::GetDecisionRequest* request,
                                        v1::AuditRecord* response) override;
  grpc::ServerUnaryReactor* VerifyAudit(
      grpc::CallbackServerContext* context,
      const v1::VerifyAuditRequest* request,
      v1::VerifyAuditResponse* response) override;

 private:
  class Call;

  // Authorizes the caller of `method`, then runs `work(principal)` on the
  // work queue and answers with its status.
  grpc::ServerUnaryReactor* Run(
      grpc::CallbackServerContext* context, const char* full_method,
      const char* method,
      std::function<absl::Status(const std::string& principal)> work);

  absl::Status Validate(const v1::ValidateRulesetRequest& request,
                        const std::string& principal,
                        v1::ValidateRulesetResponse* response);
  absl::Status Verify(v1::VerifyAuditResponse* response);

  GovernanceServiceDeps deps_;
  std::atomic<bool> accepting_{true};
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_GOVERNANCE_SERVICE_H_

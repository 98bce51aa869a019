// stepwise.v1.DecisionService on the gRPC callback API.
//
// Evaluate, the hot path, never blocks a gRPC thread: it validates and
// evaluates the request against the active bundle, gives the decision its
// UUIDv7 id and evaluated_at, hands the audit record to the audit log, and
// returns. The answer is released from the audit log's callback once the
// record is durable (audit_seq set); if the record cannot be written the
// caller gets UNAVAILABLE and no recommendation. Bad input is INVALID_ARGUMENT
// with every field violation, evaluated and logged as nothing.
//
// Each handler first asks the Authorizer who is calling and whether they hold
// the method's role (docs/security.md); a refusal is UNAUTHENTICATED or
// PERMISSION_DENIED before anything else is looked at, and the authenticated
// principal is what the audit record names.
//
// Shadow mode: when a shadow bundle is configured, every evaluated request is
// evaluated again under it (same request, same as_of) after the real
// decision is made. An outcome that differs (action, step, referral targets
// or matched rule ids) or a request the shadow bundle rejects is counted and
// written as a "shadow" record after the decision's record; the same outcome
// is only counted. The answer is never changed and a shadow failure never
// fails the call. Without a shadow bundle this costs one branch.
//
// Ownership: every dependency is borrowed and must outlive the service (the
// Server owns them all). Thread-safety: the handlers run on gRPC's threads
// concurrently; SetAccepting may be called from any thread.
#ifndef STEPWISE_SERVICE_DECISION_SERVICE_H_
#define STEPWISE_SERVICE_DECISION_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/active_bundle.h"
#include "service/audit/audit_log.h"
#include "service/audit/subject_key.h"
#include "service/auth/authorizer.h"
#include "service/idempotency.h"
#include "service/service_metrics.h"
#include "service/uuid.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace stepwise::service {

struct DecisionServiceDeps {
  const ActiveBundle* bundle = nullptr;
  audit::AuditLog* audit = nullptr;
  const audit::SubjectKey* subject_key = nullptr;
  IdempotencyCache* idempotency = nullptr;  // null: idempotency off
  ServiceMetrics* metrics = nullptr;
  UuidV7Generator* ids = nullptr;
  std::function<absl::Time()> clock;
  // Evaluate calls admitted at once.
  int64_t max_inflight = 4096;
  // Who may call what; required.
  const auth::Authorizer* authorizer = nullptr;
  // Told (on the audit writer thread) when a record could not be written.
  std::function<void(const absl::Status&)> on_audit_failure;
  // The shadow bundle; null: shadow mode off.
  std::shared_ptr<const engine::Bundle> shadow;
};

class DecisionService final : public v1::DecisionService::CallbackService {
 public:
  explicit DecisionService(DecisionServiceDeps deps);
  ~DecisionService() override;

  // False while draining: new Evaluate calls get UNAVAILABLE.
  void SetAccepting(bool accepting) { accepting_.store(accepting); }

  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::Decision* response) override;
  grpc::ServerUnaryReactor* GetRuleset(grpc::CallbackServerContext* context,
                                       const v1::GetRulesetRequest* request,
                                       v1::RulesetInfo* response) override;

  // The RulesetInfo of a bundle activated at `loaded_at`.
  static v1::RulesetInfo Describe(const engine::Bundle& bundle,
                                  absl::Time loaded_at);

 private:
  class Call;

  // Everything after admission; the result arrives through `call`.
  void EvaluateAdmitted(Call* call, const grpc::CallbackServerContext& context,
                        const v1::EvaluateRequest& request,
                        v1::Decision* response, absl::Time received_at,
                        const std::string& principal,
                        const std::string& idempotency_key);

  // Gives a decision its identity: decision_id, evaluated_at, and as_of
  // when the engine did not echo one.
  static void Stamp(const v1::EvaluateRequest& request, absl::Time received_at,
                    const FirstAnswer& answer, v1::Decision* decision);

  // A duplicate's answer: the first call's decision, rebuilt from `first`.
  static absl::Status AnswerAgain(const FirstAnswer& first,
                                  const v1::EvaluateRequest& request,
                                  v1::Decision* response);

  // Evaluates `request` under the shadow bundle and counts the result.
  // Returns the shadow record's body when the outcome differs from
  // `decision` (or the shadow bundle rejects the request), else "".
  std::string ShadowRecord(const v1::EvaluateRequest& request,
                           const v1::Decision& decision,
                           const std::string& principal,
                           const std::string& subject_hash,
                           absl::Time received_at);

  // Each Evaluate call's request and answer on one protobuf arena, reused.
  class CallArenas;

  DecisionServiceDeps deps_;
  std::unique_ptr<CallArenas> arenas_;
  std::atomic<bool> accepting_{true};
  std::atomic<int64_t> inflight_{0};
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_DECISION_SERVICE_H_

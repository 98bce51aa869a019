// The service's metrics, declared in one block with their stable names (the
// names are part of the operations contract: dashboards and alerts use them;
// docs/service.md lists them). Rename nothing without a deprecation.
//
// Thread-safety: the members are metrics (see service/metrics.h).
#ifndef STEPWISE_SERVICE_SERVICE_METRICS_H_
#define STEPWISE_SERVICE_SERVICE_METRICS_H_

#include <array>
#include <atomic>
#include <functional>
#include <string>

#include "grpcpp/support/status_code_enum.h"
#include "service/audit/audit_log.h"
#include "service/metrics.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::service {

struct ServiceMetrics {
  // `audit_stats` is read at scrape time, from the HTTP thread.
  ServiceMetrics(metrics::Registry* registry,
                 std::function<audit::AuditStats()> audit_stats);

  // stepwise_decisions_total{action}: decisions answered (after their record
  // is durable), idempotent replays excluded.
  metrics::Family<metrics::Counter>& decisions;
  // stepwise_rpc_total{method,code}: finished calls by gRPC status code.
  metrics::Family<metrics::Counter>& rpcs;
  // stepwise_evaluation_seconds: engine time of one Evaluate.
  metrics::Histogram& evaluation_seconds;
  // stepwise_rpc_duration_seconds{method}: receipt to response (for Evaluate
  // this includes waiting for the audit record to be durable).
  metrics::Family<metrics::Histogram>& rpc_seconds;
  // stepwise_idempotent_replays_total: repeats answered with the first
  // decision.
  metrics::Counter& idempotent_replays;
  // stepwise_inflight_evaluations: Evaluate calls admitted and not finished.
  metrics::Gauge& inflight;
  // Read from the audit log's own statistics when scraped:
  //   stepwise_audit_records_total      records made durable
  //   stepwise_audit_batch_records      records per group commit
  //   stepwise_audit_sync_seconds       duration of one fdatasync
  //   stepwise_audit_failures_total     records that could not be written
  //                                     (each one an UNAVAILABLE answer)
  //   stepwise_audit_last_seq           seq of the newest durable record
  // stepwise_ruleset_info{name,version,sha256}: 1 for the active bundle.
  metrics::Family<metrics::Gauge>& ruleset_info;
  // stepwise_ruleset_loaded_timestamp_seconds: when it was activated.
  metrics::Gauge& ruleset_loaded_at;
  // stepwise_serving: 1 while health is SERVING, else 0.
  metrics::Gauge& serving;
  // stepwise_ruleset_reloads_total{trigger,result}: reload attempts by what
  // asked (rpc, signal, watch) and how they ended (activated, unchanged,
  // refused, failed).
  metrics::Family<metrics::Counter>& reloads;
  // stepwise_shadow_ruleset_info{name,version,sha256}: 1 for the shadow
  // bundle, when one is configured.
  metrics::Family<metrics::Gauge>& shadow_ruleset_info;
  // stepwise_shadow_decisions_total{result}: shadow evaluations whose outcome
  // was the same as the answer's, differed, was a rejection of a request
  // the active bundle accepted, or could not be recorded (error).
  metrics::Family<metrics::Counter>& shadow_decisions;
  metrics::Counter& shadow_same;
  metrics::Counter& shadow_differs;
  metrics::Counter& shadow_rejected;
  metrics::Counter& shadow_error;

  // The hot path's children, looked up once each and then read through an
  // atomic pointer, so answering a call takes no lock.
  metrics::Counter& decision(v1::Action action);
  metrics::Counter& rpc(const char* method, grpc::StatusCode code);
  metrics::Histogram& rpc_duration(const char* method);

 private:
  static constexpr int kMethods = 6;  // DecisionService, GovernanceService
  static constexpr int kCodes = 17;   // google.rpc.Code
  static int MethodIndex(const char* method);

  std::array<std::atomic<metrics::Counter*>, v1::Action_ARRAYSIZE>
      decision_children_{};
  std::array<std::atomic<metrics::Counter*>, kMethods * kCodes> rpc_children_{};
  std::array<std::atomic<metrics::Histogram*>, kMethods> duration_children_{};
};

// The `method` label of each RPC.
inline constexpr char kEvaluateMethod[] = "Evaluate";
inline constexpr char kGetRulesetMethod[] = "GetRuleset";
inline constexpr char kValidateRulesetMethod[] = "ValidateRuleset";
inline constexpr char kReloadRulesetMethod[] = "ReloadRuleset";
inline constexpr char kGetDecisionMethod[] = "GetDecision";
inline constexpr char kVerifyAuditMethod[] = "VerifyAudit";

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_SERVICE_METRICS_H_

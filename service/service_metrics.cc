#include "service/service_metrics.h"

#include <string_view>

#include "service/status_mapping.h"

namespace stepwise::service {
namespace {

using metrics::Histogram;

// 50 µs .. ~3.3 s: an evaluation takes microseconds, an audited answer a
// few milliseconds (one fdatasync), a sick disk much longer.
std::vector<double> LatencyBounds() {
  return Histogram::ExponentialBounds(50e-6, 2, 17);
}

template <typename T, typename Make>
T& Resolve(std::atomic<T*>& slot, Make make) {
  T* child = slot.load(std::memory_order_acquire);
  if (child == nullptr) {
    // Racing threads get the same child: the family creates it once.
    child = &make();
    slot.store(child, std::memory_order_release);
  }
  return *child;
}

metrics::Histogram::Snapshot FromAudit(const audit::Histogram& h) {
  metrics::Histogram::Snapshot s;
  s.bounds = h.bounds;
  s.cumulative = h.cumulative;
  s.cumulative.resize(h.bounds.size() + 1, h.count);
  s.cumulative.back() = h.count;
  s.count = h.count;
  s.sum = h.sum;
  return s;
}

}  // namespace

ServiceMetrics::ServiceMetrics(metrics::Registry* r,
                               std::function<audit::AuditStats()> audit_stats)
    : decisions(r->AddCounter("stepwise_decisions_total",
                              "Decisions answered, by action.", {"action"})),
      rpcs(r->AddCounter("stepwise_rpc_total",
                         "Finished calls, by method and gRPC status code.",
                         {"method", "code"})),
      evaluation_seconds(
          r->AddHistogram("stepwise_evaluation_seconds",
                          "Engine time of one evaluation, in seconds.",
                          Histogram::ExponentialBounds(1e-6, 2, 18))
              .WithLabels({})),
      rpc_seconds(r->AddHistogram(
          "stepwise_rpc_duration_seconds",
          "Time from receipt to response, in seconds (Evaluate: includes the "
          "audit fdatasync).",
          LatencyBounds(), {"method"})),
      idempotent_replays(
          r->AddCounter("stepwise_idempotent_replays_total",
                        "Repeated request ids answered with the first "
                        "decision.")
              .WithLabels({})),
      inflight(r->AddGauge("stepwise_inflight_evaluations",
                           "Evaluate calls admitted and not yet answered.")
                   .WithLabels({})),
      ruleset_info(r->AddGauge("stepwise_ruleset_info",
                               "The active rule bundle (value 1).",
                               {"name", "version", "sha256"})),
      ruleset_loaded_at(
          r->AddGauge("stepwise_ruleset_loaded_timestamp_seconds",
                      "When the active rule bundle was activated (Unix "
                      "seconds).")
              .WithLabels({})),
      serving(r->AddGauge("stepwise_serving",
                          "1 while the health status is SERVING, else 0.")
                  .WithLabels({})),
      reloads(r->AddCounter("stepwise_ruleset_reloads_total",
                            "Ruleset reload attempts, by trigger (rpc, signal, "
                            "watch) and result (activated, unchanged, "
                            "refused, failed).",
                            {"trigger", "result"})),
      shadow_ruleset_info(r->AddGauge("stepwise_shadow_ruleset_info",
                                      "The shadow rule bundle (value 1).",
                                      {"name", "version", "sha256"})),
      shadow_decisions(r->AddCounter(
          "stepwise_shadow_decisions_total",
          "Shadow evaluations, by result: same, differs (action, step, "
          "referral or matched rules), rejected (the shadow bundle refused a "
          "request the active one accepted), error (not recorded).",
          {"result"})),
      shadow_same(shadow_decisions.WithLabels({"same"})),
      shadow_differs(shadow_decisions.WithLabels({"differs"})),
      shadow_rejected(shadow_decisions.WithLabels({"rejected"})),
      shadow_error(shadow_decisions.WithLabels({"error"})) {
  r->AddCallbackCounter("stepwise_audit_records_total",
                        "Audit records made durable since start-up.",
                        [audit_stats] { return audit_stats().records; });
  r->AddCallbackHistogram(
      "stepwise_audit_batch_records",
      "Records per audit group commit (one fdatasync).",
      [audit_stats] { return FromAudit(audit_stats().batch_size); });
  r->AddCallbackHistogram(
      "stepwise_audit_sync_seconds",
      "Duration of one audit fdatasync, in seconds.",
      [audit_stats] { return FromAudit(audit_stats().sync_seconds); });
  r->AddCallbackCounter(
      "stepwise_audit_writer_cpu_seconds_total",
      "CPU time the audit writer thread spent on the log's own work (record "
      "lines, chain hash, write, fdatasync), not answering the callers.",
      [audit_stats] { return audit_stats().writer_cpu_seconds; });
  r->AddCallbackCounter(
      "stepwise_audit_failures_total",
      "Audit records that could not be written; each was answered "
      "UNAVAILABLE.",
      [audit_stats] { return audit_stats().failures; });
  r->AddCallbackGauge(
      "stepwise_audit_last_seq",
      "Sequence number of the newest durable audit record.",
      [audit_stats] { return static_cast<double>(audit_stats().last_seq); });
}

int ServiceMetrics::MethodIndex(const char* method) {
  static constexpr const char* kNames[kMethods] = {
      kEvaluateMethod,      kGetRulesetMethod,  kValidateRulesetMethod,
      kReloadRulesetMethod, kGetDecisionMethod, kVerifyAuditMethod};
  for (int i = 0; i < kMethods; ++i) {
    if (std::string_view(method) == kNames[i]) return i;
  }
  return 0;  // unreachable: every caller passes one of the constants
}

metrics::Counter& ServiceMetrics::decision(v1::Action action) {
  const int i = v1::Action_IsValid(action) ? action : 0;
  return Resolve(
      decision_children_[static_cast<size_t>(i)], [&]() -> auto& {
        return decisions.WithLabels(
            {v1::Action_Name(static_cast<v1::Action>(i))});
      });
}

metrics::Counter& ServiceMetrics::rpc(const char* method,
                                      grpc::StatusCode code) {
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodes) c = grpc::StatusCode::UNKNOWN;
  const size_t slot = static_cast<size_t>(MethodIndex(method) * kCodes + c);
  return Resolve(
      rpc_children_[slot], [&]() -> auto& {
        return rpcs.WithLabels(
            {method, StatusCodeName(static_cast<grpc::StatusCode>(c))});
      });
}

metrics::Histogram& ServiceMetrics::rpc_duration(const char* method) {
  return Resolve(
      duration_children_[static_cast<size_t>(MethodIndex(method))],
      [&]() -> auto& { return rpc_seconds.WithLabels({method}); });
}

}  // namespace stepwise::service

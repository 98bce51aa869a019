// Checking candidate bundles and activating them: what start-up, the
// GovernanceService (ValidateRuleset, ReloadRuleset), SIGHUP and the bundle
// folder watch share (docs/service.md, "Reloading the ruleset").
//
// A candidate is activated only if it lints clean, passes every one of its
// own test cases and its effective_from (if any) is not in the future by the
// injected clock. Activation writes the "activation" audit record first and
// swaps the bundle in (ActiveBundle) only once that record is durable:
//
//   - every decision made under a bundle comes after that bundle's
//     activation record in the log;
//   - if the record cannot be written, the new bundle never answers a call,
//     the previous one stays active, and the caller gets UNAVAILABLE.
//
// A candidate whose sha256 is the active one is "unchanged": nothing is
// swapped and no record is written (nothing changed what decides).
//
// Ownership: every dependency is borrowed and must outlive the Reloader.
// Thread-safety: Reload and Activate may be called from any thread; they are
// serialised (one activation at a time, whatever triggered it), so each
// record's previous_sha256 is the bundle it really replaced. The lock and the
// wait for the record are std:: primitives, which ThreadSanitizer sees
// (Debian's Abseil is not instrumented).
#ifndef STEPWISE_SERVICE_RELOADER_H_
#define STEPWISE_SERVICE_RELOADER_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/testing.h"
#include "service/active_bundle.h"
#include "service/audit/audit_log.h"
#include "service/service_metrics.h"
#include "stepwise/v1/service.pb.h"

namespace stepwise::service {

// What asked for an activation; named in the audit record (`trigger`), the
// log line and the reload metric.
enum class ReloadTrigger { kStartup, kRpc, kSignal, kWatch };

// "startup", "rpc", "signal", "watch".
absl::string_view TriggerName(ReloadTrigger trigger);

// "2026-12-01T00:00:00Z": times in messages and log lines.
std::string FormatUtc(absl::Time t);

// The principal of activations the server makes on its own behalf (start-up,
// SIGHUP, the folder watch). Reserved: no credential can name it.
inline constexpr char kSystemPrincipal[] = "system";

// A candidate bundle, checked: the ValidateRulesetResponse a governance user
// sees, and the compiled bundle when it compiled.
struct CheckedCandidate {
  // Null when the files could not be read or did not lint.
  std::shared_ptr<const engine::Bundle> bundle;
  engine::TestReport tests;
  // ok = lints clean and every test case passes. ruleset.loaded_at is unset.
  v1::ValidateRulesetResponse validation;
};

// Lint + the candidate's own tests; never activates. A folder that cannot be
// read is reported as a diagnostic without a file, not as a status, so the
// caller sees it in the same place as any other reason.
CheckedCandidate CheckBundleDir(const std::string& dir);
CheckedCandidate CheckBundleFiles(const engine::BundleFiles& files);

// The body of an "activation" record: audit::ActivationRecordBody plus the
// members `trigger` and `tests`
// ({"passed":N,"failed":0,"uncovered_rules":[..]}) (docs/audit-log.md §3).
absl::StatusOr<std::string> ActivationBody(const v1::RulesetInfo& activated,
                                           absl::string_view previous_sha256,
                                           absl::string_view principal,
                                           ReloadTrigger trigger,
                                           const engine::TestReport& tests);

struct ReloaderDeps {
  // The configured bundle folder; a reload always re-reads it.
  std::string bundle_dir;
  ActiveBundle* active = nullptr;
  audit::AuditLog* audit = nullptr;
  // Updated on every outcome: ruleset_info, ruleset_loaded_at, reloads.
  ServiceMetrics* metrics = nullptr;
  // Default: absl::Now.
  std::function<absl::Time()> clock;
  // One line per outcome, without a trailing newline. Default: stderr,
  // prefixed "stepwise-server: ".
  std::function<void(const std::string&)> log;
  // Told when the activation record could not be written because the log
  // failed closed (the server turns NOT_SERVING).
  std::function<void(const absl::Status&)> on_audit_failure;
};

class Reloader {
 public:
  explicit Reloader(ReloaderDeps deps);

  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Re-reads the bundle folder and activates it if it may be (see above).
  // The answer says what happened: activated; unchanged (activated false,
  // validation.ok true, same sha256); or refused (activated false,
  // validation.ok false, with the reasons as diagnostics and test results).
  // previous_sha256 is what was active when the reload began; `active` is
  // what is active when it ends. UNAVAILABLE when the activation record could
  // not be written (the previous bundle stays active), or when nothing is
  // active yet.
  absl::StatusOr<v1::ReloadRulesetResponse> Reload(ReloadTrigger trigger,
                                                   absl::string_view principal);

  // Records and activates a bundle already checked (start-up). FAILED_
  // PRECONDITION when the record cannot be written; nothing is swapped then.
  absl::Status Activate(const CheckedCandidate& candidate,
                        ReloadTrigger trigger, absl::string_view principal);

 private:
  // Requires mu_.
  absl::Status ActivateLocked(const CheckedCandidate& candidate,
                              ReloadTrigger trigger,
                              absl::string_view principal);
  void Count(ReloadTrigger trigger, absl::string_view result);

  ReloaderDeps deps_;
  std::mutex mu_;  // held for a whole reload: reloads are serialised
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_RELOADER_H_

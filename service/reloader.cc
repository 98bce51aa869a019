#include "service/reloader.h"

#include <future>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/audit/format.h"
#include "service/audit/json.h"
#include "service/audit/record.h"
#include "service/decision_service.h"

namespace stepwise::service {
namespace {

v1::RulesetInfo DescribeCandidate(const engine::Bundle& bundle) {
  v1::RulesetInfo info = DecisionService::Describe(bundle, absl::UnixEpoch());
  info.clear_loaded_at();  // not activated: no load time
  return info;
}

CheckedCandidate FromLoad(engine::LoadResult loaded) {
  CheckedCandidate c;
  v1::ValidateRulesetResponse& v = c.validation;
  if (!loaded.ok()) {
    for (const engine::Diagnostic& d : loaded.diagnostics) {
      v1::Diagnostic* out = v.add_diagnostics();
      out->set_file(d.file);
      out->set_line(d.line);
      out->set_column(d.column);
      out->set_message(d.message);
    }
    v.set_ok(false);
    return c;
  }
  c.bundle = std::move(loaded.bundle);
  c.tests = engine::RunBundleTests(*c.bundle);
  *v.mutable_ruleset() = DescribeCandidate(*c.bundle);
  for (const engine::CaseResult& r : c.tests.cases) {
    v1::TestCaseResult* out = v.add_tests();
    out->set_name(r.name);
    out->set_passed(r.passed);
    if (!r.passed) {
      out->set_diff(absl::StrCat(r.file, ":", r.line, ": ", r.diff));
    }
  }
  for (std::string& id : c.tests.uncovered()) v.add_uncovered_rules(id);
  v.set_ok(c.tests.ok());
  return c;
}

// "3 of 12 test cases pass" etc., for log lines.
std::string TestSummary(const engine::TestReport& tests) {
  return absl::StrCat(tests.passed, " of ", tests.cases.size(),
                      " test cases pass");
}

// Why a candidate was refused, in one line.
std::string RefusalReason(const CheckedCandidate& c) {
  const v1::ValidateRulesetResponse& v = c.validation;
  if (v.diagnostics_size() > 0) {
    const v1::Diagnostic& d = v.diagnostics(0);
    const std::string first = d.file().empty()
                                  ? d.message()
                                  : absl::StrCat(d.file(), ":", d.line(), ":",
                                                 d.column(), ": ", d.message());
    return v.diagnostics_size() == 1
               ? first
               : absl::StrCat(v.diagnostics_size(),
                              " problems, the first: ", first);
  }
  for (const engine::CaseResult& r : c.tests.cases) {
    if (!r.passed) {
      return absl::StrCat(c.tests.failed, " of ", c.tests.cases.size(),
                          " test cases fail, the first: ", r.file, ":", r.line,
                          ": ", r.name);
    }
  }
  return "not valid";
}

std::string Named(const v1::RulesetInfo& info) {
  return absl::StrCat(info.name(), " ", info.version(), " (sha256 ",
                      info.sha256(), ")");
}

}  // namespace

absl::string_view TriggerName(ReloadTrigger trigger) {
  switch (trigger) {
    case ReloadTrigger::kStartup:
      return "startup";
    case ReloadTrigger::kRpc:
      return "rpc";
    case ReloadTrigger::kSignal:
      return "signal";
    case ReloadTrigger::kWatch:
      return "watch";
  }
  return "unknown";
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

CheckedCandidate CheckBundleFiles(const engine::BundleFiles& files) {
  return FromLoad(engine::CompileBundle(files));
}

CheckedCandidate CheckBundleDir(const std::string& dir) {
  absl::StatusOr<engine::BundleFiles> files = engine::ReadBundleFiles(dir);
  if (!files.ok()) {
    CheckedCandidate c;
    c.validation.set_ok(false);
    c.validation.add_diagnostics()->set_message(absl::StrCat(
        "cannot read the bundle folder ", dir, ": ", files.status().message()));
    return c;
  }
  return CheckBundleFiles(*files);
}

absl::StatusOr<std::string> ActivationBody(const v1::RulesetInfo& activated,
                                           absl::string_view previous_sha256,
                                           absl::string_view principal,
                                           ReloadTrigger trigger,
                                           const engine::TestReport& tests) {
  absl::StatusOr<std::string> body =
      audit::ActivationRecordBody(activated, previous_sha256, principal);
  if (!body.ok()) return body.status();
  if (body->empty() || body->back() != '}') {
    return absl::InternalError("the activation record body is not an object");
  }
  // Readers ignore members they do not know (docs/audit-log.md §3), so the
  // record grows by members appended to the object.
  body->pop_back();
  std::vector<std::string> uncovered;
  for (const std::string& id : tests.uncovered()) {
    uncovered.push_back(audit::JsonQuote(id));
  }
  absl::StrAppend(
      &*body, ",\"trigger\":", audit::JsonQuote(TriggerName(trigger)),
      ",\"tests\":{\"passed\":", tests.passed, ",\"failed\":", tests.failed,
      ",\"uncovered_rules\":[", absl::StrJoin(uncovered, ","), "]}}");
  return body;
}

Reloader::Reloader(ReloaderDeps deps) : deps_(std::move(deps)) {
  if (!deps_.clock) deps_.clock = [] { return absl::Now(); };
  if (!deps_.log) {
    deps_.log = [](const std::string& line) {
      std::cerr << "stepwise-server: " << line << std::endl;
    };
  }
}

void Reloader::Count(ReloadTrigger trigger, absl::string_view result) {
  if (deps_.metrics == nullptr) return;
  deps_.metrics->reloads
      .WithLabels({std::string(TriggerName(trigger)), std::string(result)})
      .Increment();
}

absl::Status Reloader::Activate(const CheckedCandidate& candidate,
                                ReloadTrigger trigger,
                                absl::string_view principal) {
  std::lock_guard<std::mutex> lock(mu_);
  return ActivateLocked(candidate, trigger, principal);
}

absl::Status Reloader::ActivateLocked(const CheckedCandidate& candidate,
                                      ReloadTrigger trigger,
                                      absl::string_view principal) {
  if (candidate.bundle == nullptr || !candidate.validation.ok()) {
    return absl::FailedPreconditionError(
        "the candidate did not pass its checks");
  }
  const absl::Time now = deps_.clock();
  const v1::RulesetInfo info =
      DecisionService::Describe(*candidate.bundle, now);
  std::shared_ptr<const ActiveBundle::Snapshot> before = deps_.active->Get();
  const std::string previous =
      before != nullptr ? before->bundle->sha256() : std::string();
  absl::StatusOr<std::string> body =
      ActivationBody(info, previous, principal, trigger, candidate.tests);
  if (!body.ok()) return body.status();

  // The record first: nothing answers under a bundle whose activation is not
  // durable in the log.
  std::promise<absl::Status> durable;
  std::future<absl::Status> done = durable.get_future();
  deps_.audit->Append(std::string(audit::kKindActivation), *std::move(body),
                      [&durable](absl::Status status, uint64_t) {
                        durable.set_value(std::move(status));
                      });
  const absl::Status written = done.get();
  if (!written.ok()) {
    if (written.code() == absl::StatusCode::kUnavailable &&
        deps_.on_audit_failure) {
      deps_.on_audit_failure(written);
    }
    return absl::UnavailableError(absl::StrCat(
        "the activation record could not be written: ", written.message()));
  }

  std::shared_ptr<const ActiveBundle::Snapshot> old =
      deps_.active->Set(candidate.bundle, now);
  if (deps_.metrics != nullptr) {
    if (old != nullptr) {
      const engine::Bundle& b = *old->bundle;
      deps_.metrics->ruleset_info.Remove({b.name(), b.version(), b.sha256()});
    }
    deps_.metrics->ruleset_info
        .WithLabels({info.name(), info.version(), info.sha256()})
        .Set(1);
    deps_.metrics->ruleset_loaded_at.Set(
        absl::ToDoubleSeconds(now - absl::UnixEpoch()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ReloadRulesetResponse> Reloader::Reload(
    ReloadTrigger trigger, absl::string_view principal) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string who =
      absl::StrCat("reload by ", TriggerName(trigger), " (", principal, ")");
  std::shared_ptr<const ActiveBundle::Snapshot> before = deps_.active->Get();
  if (before == nullptr) {
    Count(trigger, "failed");
    return absl::UnavailableError("no ruleset is active yet");
  }
  const v1::RulesetInfo was =
      DecisionService::Describe(*before->bundle, before->loaded_at);

  v1::ReloadRulesetResponse response;
  response.set_previous_sha256(was.sha256());
  *response.mutable_active() = was;
  response.set_activated(false);

  CheckedCandidate candidate = CheckBundleDir(deps_.bundle_dir);
  if (candidate.validation.ok() && candidate.bundle->sha256() == was.sha256()) {
    *response.mutable_validation() = std::move(candidate.validation);
    deps_.log(
        absl::StrCat(who, ": unchanged: ", Named(was), " is already active"));
    Count(trigger, "unchanged");
    return response;
  }
  if (candidate.validation.ok()) {
    const std::optional<absl::Time> from = candidate.bundle->effective_from();
    const absl::Time now = deps_.clock();
    if (from.has_value() && *from > now) {
      v1::Diagnostic* d = candidate.validation.add_diagnostics();
      const std::vector<engine::RuleSummary>& rules = candidate.bundle->rules();
      if (!rules.empty()) d->set_file(rules.front().file);
      d->set_message(
          absl::StrCat("effective_from ", FormatUtc(*from),
                       " is in the future (server time ", FormatUtc(now),
                       "): the bundle cannot be activated before then"));
      candidate.validation.set_ok(false);
    }
  }
  if (!candidate.validation.ok()) {
    deps_.log(absl::StrCat(who, ": refused: ", RefusalReason(candidate), "; ",
                           Named(was), " stays active"));
    *response.mutable_validation() = std::move(candidate.validation);
    Count(trigger, "refused");
    return response;
  }

  absl::Status activated = ActivateLocked(candidate, trigger, principal);
  if (!activated.ok()) {
    deps_.log(absl::StrCat(who, ": failed: ", activated.message(), "; ",
                           Named(was), " stays active"));
    Count(trigger, "failed");
    return absl::UnavailableError(
        absl::StrCat(activated.message(), "; ", Named(was), " stays active"));
  }
  std::shared_ptr<const ActiveBundle::Snapshot> now = deps_.active->Get();
  *response.mutable_active() =
      DecisionService::Describe(*now->bundle, now->loaded_at);
  response.set_activated(true);
  deps_.log(absl::StrCat(who, ": activated ", Named(response.active()),
                         ", replacing sha256 ", was.sha256(), "; ",
                         TestSummary(candidate.tests)));
  *response.mutable_validation() = std::move(candidate.validation);
  Count(trigger, "activated");
  return response;
}

}  // namespace stepwise::service

#include "service/governance_service.h"

#include <chrono>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/audit/reader.h"
#include "service/status_mapping.h"

namespace stepwise::service {
namespace {

using Clock = std::chrono::steady_clock;

// Inline bundles are bounded by the gRPC message size; a decision id by
// what a UUID could be, with room to spare, so a log line stays short.
constexpr size_t kMaxDecisionIdBytes = 128;

}  // namespace

// One call's reactor: finishes exactly once, counts the call, deletes itself
// when gRPC is done with it.
class GovernanceService::Call final : public grpc::ServerUnaryReactor {
 public:
  Call(ServiceMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method), start_(Clock::now()) {}

  void Respond(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    if (metrics_ != nullptr) {
      metrics_->rpc(method_, grpc_status.error_code()).Increment();
      const std::chrono::duration<double> took = Clock::now() - start_;
      metrics_->rpc_duration(method_).Observe(took.count());
    }
    Finish(grpc_status);
  }

  void OnDone() override { delete this; }

 private:
  ServiceMetrics* const metrics_;
  const char* const method_;
  const Clock::time_point start_;
};

GovernanceService::GovernanceService(GovernanceServiceDeps deps)
    : deps_(std::move(deps)) {
  if (!deps_.log) {
    deps_.log = [](const std::string& line) {
      std::cerr << "stepwise-server: " << line << std::endl;
    };
  }
}

grpc::ServerUnaryReactor* GovernanceService::Run(
    grpc::CallbackServerContext* context, const char* full_method,
    const char* method,
    std::function<absl::Status(const std::string& principal)> work) {
  auto* call = new Call(deps_.metrics, method);
  // Who is calling, first: a caller without the role learns nothing else.
  absl::StatusOr<auth::Principal> caller =
      deps_.authorizer == nullptr
          ? absl::StatusOr<auth::Principal>(
                absl::InternalError("the server has no authorizer"))
          : deps_.authorizer->Authorize(*context, full_method);
  if (!caller.ok()) {
    call->Respond(caller.status());
    return call;
  }
  if (!accepting_.load()) {
    call->Respond(absl::UnavailableError("the server is shutting down"));
    return call;
  }
  const bool posted = deps_.work->Post(
      [call, principal = caller->name, work = std::move(work)] {
        call->Respond(work(principal));
      });
  if (!posted) {
    call->Respond(absl::UnavailableError("the server is shutting down"));
  }
  return call;
}

grpc::ServerUnaryReactor* GovernanceService::ValidateRuleset(
    grpc::CallbackServerContext* context,
    const v1::ValidateRulesetRequest* request,
    v1::ValidateRulesetResponse* response) {
  return Run(context, auth::kValidateRulesetMethod, kValidateRulesetMethod,
             [this, request, response](const std::string& principal) {
               return Validate(*request, principal, response);
             });
}

absl::Status GovernanceService::Validate(
    const v1::ValidateRulesetRequest& request, const std::string& principal,
    v1::ValidateRulesetResponse* response) {
  CheckedCandidate candidate;
  std::string source;
  switch (request.source_case()) {
    case v1::ValidateRulesetRequest::kPath:
      if (request.path().empty()) {
        return absl::InvalidArgumentError("path: must name a bundle folder");
      }
      candidate = CheckBundleDir(request.path());
      source = "a folder on the server";
      break;
    case v1::ValidateRulesetRequest::kInline: {
      if (request.inline_().files().empty()) {
        return absl::InvalidArgumentError("inline.files: the bundle is empty");
      }
      engine::BundleFiles files;
      for (const auto& [path, bytes] : request.inline_().files()) {
        files.emplace(path, bytes);
      }
      candidate = CheckBundleFiles(files);
      source = absl::StrCat(files.size(), " inline files");
      break;
    }
    case v1::ValidateRulesetRequest::SOURCE_NOT_SET:
      return absl::InvalidArgumentError(
          "source: give a bundle path on the server or the files inline");
  }
  *response = std::move(candidate.validation);
  const std::string what =
      response->has_ruleset()
          ? absl::StrCat(response->ruleset().name(), " ",
                         response->ruleset().version(), " (sha256 ",
                         response->ruleset().sha256(), ")")
          : source;
  deps_.log(absl::StrCat("validate by ", principal, ": ", what, ": ",
                         response->ok() ? "ok" : "not valid", "; ",
                         response->diagnostics_size(), " diagnostics, ",
                         response->tests_size(), " test cases"));
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* GovernanceService::ReloadRuleset(
    grpc::CallbackServerContext* context,
    const v1::ReloadRulesetRequest* /*request*/,
    v1::ReloadRulesetResponse* response) {
  return Run(context, auth::kReloadRulesetMethod, kReloadRulesetMethod,
             [this, response](const std::string& principal) -> absl::Status {
               absl::StatusOr<v1::ReloadRulesetResponse> reloaded =
                   deps_.reloader->Reload(ReloadTrigger::kRpc, principal);
               if (!reloaded.ok()) return reloaded.status();
               *response = *std::move(reloaded);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* GovernanceService::GetDecision(
    grpc::CallbackServerContext* context, const v1::GetDecisionRequest* request,
    v1::AuditRecord* response) {
  return Run(
      context, auth::kGetDecisionMethod, kGetDecisionMethod,
      [this, request, response](const std::string&) -> absl::Status {
        const std::string& id = request->decision_id();
        if (id.empty()) {
          return absl::InvalidArgumentError("decision_id: must not be empty");
        }
        if (id.size() > kMaxDecisionIdBytes) {
          return absl::InvalidArgumentError(absl::StrCat(
              "decision_id: longer than ", kMaxDecisionIdBytes, " bytes"));
        }
        absl::StatusOr<audit::FoundRecord> found =
            audit::FindDecision(*deps_.audit_fs, deps_.audit_dir, id);
        if (!found.ok()) return found.status();
        response->set_seq(found->record.seq);
        response->set_decision_id(found->record.decision_id);
        response->set_json(std::move(found->record.json));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* GovernanceService::VerifyAudit(
    grpc::CallbackServerContext* context,
    const v1::VerifyAuditRequest* /*request*/,
    v1::VerifyAuditResponse* response) {
  return Run(context, auth::kVerifyAuditMethod, kVerifyAuditMethod,
             [this, response](const std::string&) { return Verify(response); });
}

absl::Status GovernanceService::Verify(v1::VerifyAuditResponse* response) {
  // Up to what has been acknowledged: the writer may be in the middle of
  // the next batch, which is not a break.
  audit::VerifyOptions options;
  options.through_seq = deps_.audit->stats().last_seq;
  absl::StatusOr<audit::VerifyResult> result =
      audit::Verify(*deps_.audit_fs, deps_.audit_dir, options);
  if (!result.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot read the audit log: ", result.status().message()));
  }
  response->set_ok(result->ok());
  response->set_records_checked(result->records_checked);
  response->set_head_hash(result->head_hash);
  response->set_first_break(result->FirstBreakText());
  return absl::OkStatus();
}

}  // namespace stepwise::service

#include "service/auth/roles.h"

#include <vector>

#include "absl/strings/str_join.h"

namespace stepwise::service::auth {
namespace {

const MethodPolicy kTable[] = {
    {kEvaluateMethod, "Evaluate", Role::kEvaluator},
    {kGetRulesetMethod, "GetRuleset", Role::kEvaluator},
    {kValidateRulesetMethod, "ValidateRuleset", Role::kGovernance},
    {kReloadRulesetMethod, "ReloadRuleset", Role::kGovernance},
    {kGetDecisionMethod, "GetDecision", Role::kAuditor},
    {kVerifyAuditMethod, "VerifyAudit", Role::kAuditor},
    // Open: whether the server is up, and what it serves; no decision.
    {"/grpc.health.v1.Health/Check", "Health.Check", std::nullopt},
    {"/grpc.health.v1.Health/Watch", "Health.Watch", std::nullopt},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     "ServerReflectionInfo", std::nullopt},
};

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kEvaluator:
      return "evaluator";
    case Role::kGovernance:
      return "governance";
    case Role::kAuditor:
      return "auditor";
  }
  return "unknown";
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role role : kAllRoles) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

std::string RoleSet::ToString() const {
  std::vector<absl::string_view> names;
  for (Role role : kAllRoles) {
    if (Has(role)) names.push_back(RoleName(role));
  }
  return absl::StrJoin(names, ",");
}

absl::Span<const MethodPolicy> MethodTable() { return kTable; }

const MethodPolicy* FindMethod(absl::string_view full_name) {
  for (const MethodPolicy& row : kTable) {
    if (row.full_name == full_name) return &row;
  }
  return nullptr;
}

}  // namespace stepwise::service::auth

#include "service/auth/roles.h"

#include <vector>

#include "absl/strings/str_cat.h"
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

namespace {
constexpr absl::string_view kAdmin = "admin";
}  // namespace

std::optional<RoleSet> RolesNamed(absl::string_view name) {
  RoleSet roles;
  if (name == kAdmin) {
    roles.Add(Role::kGovernance);
    roles.Add(Role::kAuditor);
    return roles;
  }
  const std::optional<Role> role = ParseRole(name);
  if (!role.has_value()) return std::nullopt;
  roles.Add(*role);
  return roles;
}

std::string RoleNamesInFiles() {
  std::vector<absl::string_view> names;
  for (Role role : kAllRoles) names.push_back(RoleName(role));
  return absl::StrCat(absl::StrJoin(names, ", "), "; ", kAdmin);
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

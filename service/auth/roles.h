// Roles and the method -> role table: which role a caller needs for each
// method the server serves (docs/security.md, "Roles").
//
//   evaluator   Evaluate, GetRuleset            (an EHR, a primary-care tool)
//   governance  ValidateRuleset, ReloadRuleset  (governance staff)
//   auditor     GetDecision, VerifyAudit        (auditors)
//
// Health and reflection are open: they reveal no decision. A method missing
// from the table is denied to everyone, so a new RPC stays closed until it
// is given a role here.
//
// Thread-safety: constants and pure functions.
#ifndef STEPWISE_SERVICE_AUTH_ROLES_H_
#define STEPWISE_SERVICE_AUTH_ROLES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace stepwise::service::auth {

enum class Role : uint8_t {
  kEvaluator = 1,
  kGovernance = 2,
  kAuditor = 4,
};

inline constexpr Role kAllRoles[] = {Role::kEvaluator, Role::kGovernance,
                                     Role::kAuditor};

// "evaluator", "governance", "auditor": the names in files and messages.
absl::string_view RoleName(Role role);
// The role named `name` (exact, lowercase), or nullopt.
std::optional<Role> ParseRole(absl::string_view name);

// A small set of roles.
class RoleSet {
 public:
  constexpr RoleSet() = default;
  static constexpr RoleSet All() { return RoleSet(0x7); }

  void Add(Role role) { bits_ |= static_cast<uint8_t>(role); }
  void Add(RoleSet other) { bits_ |= other.bits_; }
  bool Has(Role role) const {
    return (bits_ & static_cast<uint8_t>(role)) != 0;
  }
  bool empty() const { return bits_ == 0; }
  // "evaluator,auditor" in table order; "" when empty.
  std::string ToString() const;

  friend bool operator==(RoleSet a, RoleSet b) { return a.bits_ == b.bits_; }

 private:
  constexpr explicit RoleSet(uint8_t bits) : bits_(bits) {}
  uint8_t bits_ = 0;
};

// The roles a name in a tokens or client certs file grants: its role, or
// for `admin` (architecture §2's name for the GovernanceService's callers)
// governance and auditor; nullopt for any other name.
std::optional<RoleSet> RolesNamed(absl::string_view name);
// "evaluator, governance, auditor; admin": the names a file may list, for
// messages.
std::string RoleNamesInFiles();

// gRPC method full names, as the handlers name themselves to Authorize().
inline constexpr char kEvaluateMethod[] =
    "/stepwise.v1.DecisionService/Evaluate";
inline constexpr char kGetRulesetMethod[] =
    "/stepwise.v1.DecisionService/GetRuleset";
inline constexpr char kValidateRulesetMethod[] =
    "/stepwise.v1.GovernanceService/ValidateRuleset";
inline constexpr char kReloadRulesetMethod[] =
    "/stepwise.v1.GovernanceService/ReloadRuleset";
inline constexpr char kGetDecisionMethod[] =
    "/stepwise.v1.GovernanceService/GetDecision";
inline constexpr char kVerifyAuditMethod[] =
    "/stepwise.v1.GovernanceService/VerifyAudit";

struct MethodPolicy {
  absl::string_view full_name;   // "/stepwise.v1.DecisionService/Evaluate"
  absl::string_view short_name;  // "Evaluate": log lines and metric labels
  // The role a caller needs; nullopt: open to every caller, no credentials.
  std::optional<Role> role;
};

// Every method the server serves, closed ones first.
absl::Span<const MethodPolicy> MethodTable();
// The row of `full_name`, or null when the server does not serve it.
const MethodPolicy* FindMethod(absl::string_view full_name);

}  // namespace stepwise::service::auth

#endif  // STEPWISE_SERVICE_AUTH_ROLES_H_

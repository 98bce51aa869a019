#include "service/auth/roles.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace stepwise::service::auth {
namespace {

std::optional<Role> RoleOf(absl::string_view method) {
  const MethodPolicy* row = FindMethod(method);
  EXPECT_NE(row, nullptr) << method;
  return row != nullptr ? row->role : std::nullopt;
}

TEST(RolesTest, EveryRpcOfTheContractNeedsTheRoleTheIssueNames) {
  EXPECT_EQ(RoleOf("/stepwise.v1.DecisionService/Evaluate"), Role::kEvaluator);
  EXPECT_EQ(RoleOf("/stepwise.v1.DecisionService/GetRuleset"),
            Role::kEvaluator);
  EXPECT_EQ(RoleOf("/stepwise.v1.GovernanceService/ValidateRuleset"),
            Role::kGovernance);
  EXPECT_EQ(RoleOf("/stepwise.v1.GovernanceService/ReloadRuleset"),
            Role::kGovernance);
  EXPECT_EQ(RoleOf("/stepwise.v1.GovernanceService/GetDecision"),
            Role::kAuditor);
  EXPECT_EQ(RoleOf("/stepwise.v1.GovernanceService/VerifyAudit"),
            Role::kAuditor);
}

TEST(RolesTest, TheConstantsAreTheRowsNames) {
  EXPECT_EQ(RoleOf(kEvaluateMethod), Role::kEvaluator);
  EXPECT_EQ(RoleOf(kGetRulesetMethod), Role::kEvaluator);
  EXPECT_EQ(RoleOf(kValidateRulesetMethod), Role::kGovernance);
  EXPECT_EQ(RoleOf(kReloadRulesetMethod), Role::kGovernance);
  EXPECT_EQ(RoleOf(kGetDecisionMethod), Role::kAuditor);
  EXPECT_EQ(RoleOf(kVerifyAuditMethod), Role::kAuditor);
}

// A method added to the contract without a row would be denied to everyone;
// this makes the omission a test failure rather than an outage.
TEST(RolesTest, EveryMethodOfTheStepwiseServicesHasARoleRow) {
  // service.proto, through a message it declares (which also links it in).
  const google::protobuf::FileDescriptor* file =
      v1::GetRulesetRequest::descriptor()->file();
  ASSERT_EQ(file->service_count(), 2);
  int methods = 0;
  for (const char* service : {"DecisionService", "GovernanceService"}) {
    const google::protobuf::ServiceDescriptor* s =
        file->FindServiceByName(service);
    ASSERT_NE(s, nullptr) << service;
    for (int i = 0; i < s->method_count(); ++i) {
      const std::string full =
          "/" + s->full_name() + "/" + s->method(i)->name();
      const MethodPolicy* row = FindMethod(full);
      ASSERT_NE(row, nullptr) << full << " has no row in the role table";
      EXPECT_TRUE(row->role.has_value()) << full << " must not be open";
      EXPECT_EQ(row->short_name, s->method(i)->name());
      ++methods;
    }
  }
  EXPECT_EQ(methods, 6);
}

TEST(RolesTest, HealthAndReflectionAreOpen) {
  for (const char* method :
       {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    const MethodPolicy* row = FindMethod(method);
    ASSERT_NE(row, nullptr) << method;
    EXPECT_FALSE(row->role.has_value()) << method;
  }
}

TEST(RolesTest, UnknownMethodsHaveNoRow) {
  EXPECT_EQ(FindMethod("/stepwise.v1.DecisionService/Delete"), nullptr);
  EXPECT_EQ(FindMethod("Evaluate"), nullptr);
  EXPECT_EQ(FindMethod(""), nullptr);
  EXPECT_EQ(FindMethod("/stepwise.v1.decisionservice/evaluate"), nullptr);
}

TEST(RolesTest, TableNamesAreUnique) {
  std::set<absl::string_view> full, short_names;
  for (const MethodPolicy& row : MethodTable()) {
    EXPECT_TRUE(full.insert(row.full_name).second) << row.full_name;
    EXPECT_TRUE(short_names.insert(row.short_name).second) << row.short_name;
  }
}

TEST(RolesTest, RoleNamesRoundTrip) {
  for (Role role : kAllRoles) {
    EXPECT_EQ(ParseRole(RoleName(role)), role);
  }
  EXPECT_EQ(ParseRole("admin"), std::nullopt);
  EXPECT_EQ(ParseRole("Evaluator"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
}

// In files a name grants a set: one role, or `admin` for the whole
// GovernanceService (never evaluator).
TEST(RolesTest, NamesInFilesGrantSets) {
  for (Role role : kAllRoles) {
    std::optional<RoleSet> roles = RolesNamed(RoleName(role));
    ASSERT_TRUE(roles.has_value());
    EXPECT_EQ(roles->ToString(), RoleName(role));
  }
  std::optional<RoleSet> admin = RolesNamed("admin");
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->ToString(), "governance,auditor");
  EXPECT_EQ(RolesNamed("Admin"), std::nullopt);
  EXPECT_EQ(RolesNamed("root"), std::nullopt);
  EXPECT_EQ(RoleNamesInFiles(), "evaluator, governance, auditor; admin");
}

TEST(RolesTest, RoleSet) {
  RoleSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.ToString(), "");
  set.Add(Role::kAuditor);
  set.Add(Role::kEvaluator);
  EXPECT_TRUE(set.Has(Role::kEvaluator));
  EXPECT_FALSE(set.Has(Role::kGovernance));
  EXPECT_TRUE(set.Has(Role::kAuditor));
  EXPECT_EQ(set.ToString(), "evaluator,auditor");
  EXPECT_EQ(RoleSet::All().ToString(), "evaluator,governance,auditor");
  set.Add(Role::kGovernance);
  EXPECT_EQ(set, RoleSet::All());
}

}  // namespace
}  // namespace stepwise::service::auth

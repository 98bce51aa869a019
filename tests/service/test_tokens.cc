#include "test_tokens.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/auth/credential_files.h"

namespace stepwise::testing {

std::string TokensYaml(const std::vector<TestToken>& tokens) {
  std::string yaml = "tokens:\n";
  for (const TestToken& t : tokens) {
    absl::StrAppend(&yaml,
                    "  - sha256: ", service::auth::TokenSha256Hex(t.token),
                    "\n    principal: ", t.principal, "\n    roles: [",
                    absl::StrJoin(t.roles, ", "), "]\n");
  }
  return yaml;
}

std::string Bearer(const std::string& token) {
  return token.empty() ? "" : "Bearer " + token;
}

void PrepareCall(grpc::ClientContext* context,
                 const std::string& authorization) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!authorization.empty()) {
    context->AddMetadata("authorization", authorization);
  }
}

}  // namespace stepwise::testing

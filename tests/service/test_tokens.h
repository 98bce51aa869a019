// Test support for the integration tests that call an authenticating
// server: a token file's YAML for a few role tokens, and a client context
// carrying a token.
#ifndef STEPWISE_TESTS_SERVICE_TEST_TOKENS_H_
#define STEPWISE_TESTS_SERVICE_TEST_TOKENS_H_

#include <string>
#include <vector>

#include "grpcpp/client_context.h"

namespace stepwise::testing {

// One bearer token of a token file: the token in clear (the file keeps only
// its SHA-256), its principal and its roles.
struct TestToken {
  std::string token;
  std::string principal;
  std::vector<std::string> roles;
};

// The token file's YAML for `tokens` (docs/security.md).
std::string TokensYaml(const std::vector<TestToken>& tokens);

// "Bearer <token>", or "" (no header at all) for an empty token.
std::string Bearer(const std::string& token);

// A deadline 30 s from now and, unless `authorization` is empty, that
// authorization header.
void PrepareCall(grpc::ClientContext* context,
                 const std::string& authorization);

}  // namespace stepwise::testing

#endif  // STEPWISE_TESTS_SERVICE_TEST_TOKENS_H_

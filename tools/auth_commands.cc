// The operator's verbs for bearer tokens (docs/security.md):
//   stepwise token new    a fresh random token and the hash to put in the
//                         server's tokens file
//   stepwise token hash   the hash of a token read from stdin
// The server only ever stores the hash; the token goes to the caller.
#include <openssl/rand.h>

#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "service/auth/credential_files.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

// A token of fewer characters is refused: the tokens file holds an unsalted
// SHA-256, which protects only a token too random to guess.
constexpr size_t kMinTokenLength = 32;
// Bytes read from stdin at most; a token is far shorter.
constexpr size_t kMaxInput = 4096;

void RunHash(int* exit_code) {
  std::string input;
  char buf[512];
  while (input.size() <= kMaxInput &&
         std::cin.read(buf, sizeof(buf)).gcount() > 0) {
    input.append(buf, static_cast<size_t>(std::cin.gcount()));
  }
  if (input.size() > kMaxInput) {
    std::cerr << "stepwise: token hash: stdin holds more than " << kMaxInput
              << " bytes; expected one token\n";
    *exit_code = kExitUsage;
    return;
  }
  const absl::string_view token = absl::StripAsciiWhitespace(input);
  if (token.empty()) {
    std::cerr << "stepwise: token hash: expected a token on stdin, e.g. "
                 "`stepwise token hash < token.txt`\n";
    *exit_code = kExitUsage;
    return;
  }
  for (char c : token) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        !absl::ascii_isprint(static_cast<unsigned char>(c))) {
      std::cerr << "stepwise: token hash: a token is one word of printable "
                   "characters (it travels as 'Bearer <token>')\n";
      *exit_code = kExitCheckFailed;
      return;
    }
  }
  if (token.size() < kMinTokenLength) {
    std::cerr << "stepwise: token hash: the token has " << token.size()
              << " characters; use at least " << kMinTokenLength
              << " random ones (`stepwise token new` makes one)\n";
    *exit_code = kExitCheckFailed;
    return;
  }
  std::cout << service::auth::TokenSha256Hex(token) << "\n";
  *exit_code = kExitOk;
}

void RunNew(int* exit_code) {
  unsigned char random[32];  // 256 bits
  if (RAND_bytes(random, sizeof(random)) != 1) {
    std::cerr << "stepwise: token new: no randomness available\n";
    *exit_code = kExitCheckFailed;
    return;
  }
  const std::string token = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  std::cout << "token: " << token << "\n"
            << "sha256: " << service::auth::TokenSha256Hex(token) << "\n";
  *exit_code = kExitOk;
}

void RegisterAuthCommands(CLI::App& app, int* exit_code) {
  auto* token = app.add_subcommand(
      "token", "Bearer tokens for the server's tokens file (hashes only)");
  token->require_subcommand(1);
  token
      ->add_subcommand("hash",
                       "Read a token from stdin; print its SHA-256 for the "
                       "tokens file")
      ->callback([exit_code] { RunHash(exit_code); });
  token
      ->add_subcommand("new",
                       "Print a new random token (give it to the caller) and "
                       "its SHA-256 (put it in the tokens file)")
      ->callback([exit_code] { RunNew(exit_code); });
}

STEPWISE_REGISTER_COMMANDS(RegisterAuthCommands);

}  // namespace
}  // namespace stepwise::tools

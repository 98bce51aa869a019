#include "service/auth/credential_files.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_certs.h"

namespace stepwise::service::auth {
namespace {

using ::stepwise::testing::MakeTestDir;
using ::stepwise::testing::WriteTestFile;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTokenA[] = "tA1-9b6f0c7e5d4a3b2c1d0e9f8a7b6c5d4e3f2a1b0";
constexpr char kTokenB[] = "tB2-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3";

std::string TokensYaml() {
  return absl::StrCat("tokens:\n  - sha256: ", TokenSha256Hex(kTokenA),
                      "\n    principal: ehr-gateway\n"
                      "    roles: [evaluator]\n"
                      "  - sha256: ",
                      TokenSha256Hex(kTokenB),
                      "\n    principal: governance-console\n"
                      "    roles: [governance, auditor]\n");
}

// The error text of parsing `yaml` as a tokens file ("" if it parsed).
std::string TokenErrors(const std::string& yaml) {
  absl::StatusOr<std::vector<TokenEntry>> parsed =
      ParseTokenFile(yaml, "tokens.yaml");
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

std::string CertErrors(const std::string& yaml) {
  absl::StatusOr<std::vector<CertEntry>> parsed =
      ParseClientCertFile(yaml, "certs.yaml");
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(TokenHashTest, IsTheHexSha256OfTheTokensBytes) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(TokenSha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenSha256Hex("").size(), 64u);
}

TEST(TokenFileTest, ParsesEntries) {
  absl::StatusOr<std::vector<TokenEntry>> tokens =
      ParseTokenFile(TokensYaml(), "tokens.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].principal, "ehr-gateway");
  EXPECT_EQ((*tokens)[0].roles.ToString(), "evaluator");
  EXPECT_EQ((*tokens)[0].sha256, TokenSha256(kTokenA));
  EXPECT_EQ((*tokens)[1].principal, "governance-console");
  EXPECT_EQ((*tokens)[1].roles.ToString(), "governance,auditor");
}

TEST(TokenFileTest, UppercaseHexIsTheSameHash) {
  std::string hex = TokenSha256Hex(kTokenA);
  for (char& c : hex) c = static_cast<char>(toupper(c));
  absl::StatusOr<std::vector<TokenEntry>> tokens =
      ParseTokenFile(absl::StrCat("tokens:\n  - {sha256: ", hex,
                                  ", principal: a, roles: [auditor]}\n"),
                     "t");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)[0].sha256, TokenSha256(kTokenA));
}

TEST(TokenFileTest, RefusesTheWrongShape) {
  EXPECT_EQ(TokenErrors("- a\n"),
            "tokens.yaml:1:1: expected a map with the key 'tokens'");
  EXPECT_EQ(TokenErrors("tokenz: []\n"),
            "tokens.yaml:1:1: unknown key 'tokenz' (expected 'tokens')\n"
            "tokens.yaml:1:1: missing 'tokens'");
  EXPECT_EQ(TokenErrors("tokens: []\n"),
            "tokens.yaml:1:9: tokens: expected a non-empty list of entries");
  EXPECT_EQ(TokenErrors("tokens:\n  - just-a-string\n"),
            "tokens.yaml:2:5: expected a map with the keys sha256, principal, "
            "roles");
  EXPECT_THAT(TokenErrors("tokens: [\n"), HasSubstr("tokens.yaml:"));
  EXPECT_EQ(TokenErrors(""),
            "tokens.yaml: expected a map with the key 'tokens'");
}

TEST(TokenFileTest, RefusesUnknownAndMissingKeys) {
  const std::string hex = TokenSha256Hex(kTokenA);
  EXPECT_EQ(TokenErrors(absl::StrCat("tokens:\n  - sha256: ", hex,
                                     "\n    principal: a\n    roles: "
                                     "[auditor]\n    expires: 2027-01-01\n")),
            "tokens.yaml:5:5: unknown key 'expires' (expected sha256, "
            "principal, roles)");
  EXPECT_EQ(TokenErrors("tokens:\n  - principal: a\n    roles: [auditor]\n"),
            "tokens.yaml:2:5: missing 'sha256'");
  EXPECT_EQ(TokenErrors(absl::StrCat("tokens:\n  - sha256: ", hex,
                                     "\n    roles: [auditor]\n")),
            "tokens.yaml:2:5: missing 'principal'");
  EXPECT_EQ(TokenErrors(absl::StrCat("tokens:\n  - sha256: ", hex,
                                     "\n    principal: a\n")),
            "tokens.yaml:2:5: missing 'roles'");
  EXPECT_EQ(TokenErrors(absl::StrCat("tokens:\n  - sha256: ", hex,
                                     "\n    principal: a\n    principal: b\n"
                                     "    roles: [auditor]\n")),
            "tokens.yaml:4:5: 'principal' is given twice");
}

TEST(TokenFileTest, RefusesBadHashesWithoutEchoingThem) {
  // A token pasted where its hash belongs must not be repeated anywhere.
  const std::string errors =
      TokenErrors(absl::StrCat("tokens:\n  - sha256: ", kTokenA,
                               "\n    principal: a\n    roles: "
                               "[auditor]\n"));
  EXPECT_EQ(errors,
            absl::StrCat("tokens.yaml:2:13: sha256: expected 64 hex digits "
                         "(the SHA-256 of the token, as `stepwise token hash` "
                         "prints it), got ",
                         std::string(kTokenA).size(), " characters"));
  EXPECT_THAT(errors, Not(HasSubstr(kTokenA)));

  std::string not_hex = TokenSha256Hex(kTokenA);
  not_hex[10] = 'g';
  EXPECT_THAT(TokenErrors(absl::StrCat("tokens:\n  - sha256: ", not_hex,
                                       "\n    principal: a\n    roles: "
                                       "[auditor]\n")),
              AllOf(HasSubstr("tokens.yaml:2:13: sha256: expected 64 hex "
                              "digits"),
                    Not(HasSubstr(not_hex))));
  EXPECT_EQ(TokenErrors("tokens:\n  - sha256: [a]\n    principal: a\n"
                        "    roles: [auditor]\n"),
            "tokens.yaml:2:13: sha256: expected a non-empty string");
}

TEST(TokenFileTest, RefusesDuplicateHashesNamingBothPlaces) {
  const std::string hex = TokenSha256Hex(kTokenA);
  const std::string errors = TokenErrors(absl::StrCat(
      "tokens:\n  - sha256: ", hex,
      "\n    principal: a\n    roles: [auditor]\n  - sha256: ", hex,
      "\n    principal: b\n    roles: [evaluator]\n"));
  EXPECT_EQ(errors,
            "tokens.yaml:5:13: sha256: the same token hash is already listed "
            "at tokens.yaml:2:13");
}

TEST(TokenFileTest, RefusesUnknownAndRepeatedRoles) {
  const std::string head = absl::StrCat(
      "tokens:\n  - sha256: ", TokenSha256Hex(kTokenA), "\n    principal: a\n");
  EXPECT_EQ(TokenErrors(head + "    roles: [evaluator, root]\n"),
            "tokens.yaml:4:24: unknown role 'root' (roles: evaluator, "
            "governance, auditor; admin)");
  EXPECT_EQ(TokenErrors(head + "    roles: [Admin]\n"),
            "tokens.yaml:4:13: unknown role 'Admin' (roles: evaluator, "
            "governance, auditor; admin)");
  EXPECT_EQ(TokenErrors(head + "    roles: [auditor, auditor]\n"),
            "tokens.yaml:4:22: role 'auditor' is listed twice");
  EXPECT_EQ(TokenErrors(head + "    roles: [admin, admin]\n"),
            "tokens.yaml:4:20: role 'admin' is listed twice");
  EXPECT_EQ(TokenErrors(head + "    roles: []\n"),
            "tokens.yaml:4:12: roles: expected a non-empty list, e.g. "
            "[evaluator] (roles: evaluator, governance, auditor; admin)");
  EXPECT_EQ(TokenErrors(head + "    roles: evaluator\n"),
            "tokens.yaml:4:12: roles: expected a non-empty list, e.g. "
            "[evaluator] (roles: evaluator, governance, auditor; admin)");
}

// Architecture §2 names the GovernanceService's callers "admin": in a file
// `admin` stands for both of its roles, governance and auditor, and never
// for evaluator (an administrator is not an EHR).
TEST(TokenFileTest, AdminIsTheWholeGovernanceService) {
  const std::string head = absl::StrCat(
      "tokens:\n  - sha256: ", TokenSha256Hex(kTokenA), "\n    principal: a\n");
  absl::StatusOr<std::vector<TokenEntry>> tokens =
      ParseTokenFile(head + "    roles: [admin]\n", "tokens.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)[0].roles.ToString(), "governance,auditor");
  tokens =
      ParseTokenFile(head + "    roles: [admin, evaluator]\n", "tokens.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)[0].roles.ToString(), "evaluator,governance,auditor");
  // Overlapping with a role it stands for is no error: the set is the same.
  tokens =
      ParseTokenFile(head + "    roles: [governance, admin]\n", "tokens.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)[0].roles.ToString(), "governance,auditor");
  absl::StatusOr<std::vector<CertEntry>> certs = ParseClientCertFile(
      "client_certs:\n  - common_name: board\n    principal: board\n"
      "    roles: [admin]\n",
      "certs.yaml");
  ASSERT_TRUE(certs.ok()) << certs.status();
  EXPECT_EQ((*certs)[0].roles.ToString(), "governance,auditor");
}

TEST(TokenFileTest, RefusesReservedAndOddPrincipals) {
  auto file = [](const std::string& principal) {
    return absl::StrCat("tokens:\n  - sha256: ", TokenSha256Hex(kTokenA),
                        "\n    principal: ", principal,
                        "\n    roles: [auditor]\n");
  };
  EXPECT_EQ(TokenErrors(file("anonymous")),
            "tokens.yaml:3:16: principal: 'anonymous' is reserved (the "
            "server uses it itself)");
  EXPECT_EQ(TokenErrors(file("system")),
            "tokens.yaml:3:16: principal: 'system' is reserved (the server "
            "uses it itself)");
  EXPECT_EQ(TokenErrors(file("\"two words\"")),
            "tokens.yaml:3:16: principal: use 1..128 letters, digits and . _ "
            "- @ : / + (no spaces or quotes)");
  EXPECT_EQ(TokenErrors(file(std::string(129, 'a'))),
            "tokens.yaml:3:16: principal: use 1..128 letters, digits and . _ "
            "- @ : / + (no spaces or quotes)");
  EXPECT_EQ(TokenErrors(file(std::string(128, 'a'))), "");
  EXPECT_EQ(TokenErrors(file("svc:ehr/gw@clinic.example+1_a-b")), "");
}

TEST(TokenFileTest, ReportsEveryProblemAtOnce) {
  const std::string errors = TokenErrors(
      "tokens:\n  - sha256: abc\n    principal: system\n    roles: [root]\n"
      "  - colour: blue\n");
  EXPECT_THAT(errors, HasSubstr("tokens.yaml:2:13: sha256: expected 64"));
  EXPECT_THAT(errors, HasSubstr("tokens.yaml:3:16: principal: 'system'"));
  EXPECT_THAT(errors, HasSubstr("tokens.yaml:4:13: unknown role 'root'"));
  EXPECT_THAT(errors, HasSubstr("tokens.yaml:5:5: unknown key 'colour'"));
  EXPECT_THAT(errors, HasSubstr("tokens.yaml:5:5: missing 'sha256'"));
}

TEST(TokenFileTest, LoadRefusesFilesGroupOrOthersCanReach) {
  const std::string dir = MakeTestDir("token-modes");
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0660, 0610}) {
    const std::string path =
        WriteTestFile(dir, "tokens.yaml", TokensYaml(), mode);
    absl::StatusOr<std::vector<TokenEntry>> loaded = LoadTokenFile(path);
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(loaded.status().message(),
                AllOf(HasSubstr(path), HasSubstr("lets group or others"),
                      HasSubstr("chmod 0600")));
  }
  const std::string path =
      WriteTestFile(dir, "tokens.yaml", TokensYaml(), 0644);
  EXPECT_EQ(LoadTokenFile(path).status().message(),
            absl::StrCat(path,
                         ": mode 0644 lets group or others read it; "
                         "chmod 0600 ",
                         path));
  for (mode_t mode : {0600, 0400}) {
    WriteTestFile(dir, "tokens.yaml", TokensYaml(), mode);
    absl::StatusOr<std::vector<TokenEntry>> loaded = LoadTokenFile(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->size(), 2u);
  }
}

TEST(TokenFileTest, LoadNamesTheFileInParseErrors) {
  const std::string dir = MakeTestDir("token-parse");
  const std::string path = WriteTestFile(dir, "t.yaml", "tokens: []\n");
  absl::StatusOr<std::vector<TokenEntry>> loaded = LoadTokenFile(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(),
            absl::StrCat(path,
                         ":1:9: tokens: expected a non-empty list of "
                         "entries"));
}

TEST(TokenFileTest, LoadReportsAMissingFile) {
  absl::StatusOr<std::vector<TokenEntry>> loaded =
      LoadTokenFile(MakeTestDir("token-missing") + "/nope.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(),
              AllOf(HasSubstr("cannot read"), HasSubstr("nope.yaml"),
                    HasSubstr("No such file")));
}

// Counts the compares so the test sees that each lookup compares against
// every stored hash, whatever the outcome, through the injected function.
int compares = 0;
int CountingEqual(const void* a, const void* b, size_t n) {
  ++compares;
  return CRYPTO_memcmp(a, b, n);
}

std::vector<TokenEntry> ManyTokens(int n) {
  std::vector<TokenEntry> entries;
  for (int i = 0; i < n; ++i) {
    TokenEntry e;
    e.sha256 = TokenSha256(absl::StrCat("token-", i));
    e.principal = absl::StrCat("p", i);
    e.roles.Add(Role::kEvaluator);
    entries.push_back(e);
  }
  return entries;
}

TEST(TokenTableTest, FindsTheTokensEntry) {
  const TokenTable table(ManyTokens(5));
  for (int i = 0; i < 5; ++i) {
    const TokenEntry* found = table.Find(absl::StrCat("token-", i));
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->principal, absl::StrCat("p", i));
  }
  EXPECT_EQ(table.Find("token-5"), nullptr);
  EXPECT_EQ(table.Find(""), nullptr);
  // The hash itself is not a token.
  EXPECT_EQ(table.Find(TokenSha256Hex("token-1")), nullptr);
}

TEST(TokenTableTest, ComparesEveryEntryInConstantTime) {
  const TokenTable table(ManyTokens(7), &CountingEqual);
  for (const char* token : {"token-0", "token-3", "token-6", "no-such-token"}) {
    compares = 0;
    table.Find(token);
    EXPECT_EQ(compares, 7) << token;
  }
}

TEST(ClientCertFileTest, ParsesEntries) {
  absl::StatusOr<std::vector<CertEntry>> certs = ParseClientCertFile(
      "client_certs:\n"
      "  - common_name: ehr-gateway.clinic.example\n"
      "    principal: ehr-gateway\n"
      "    roles: [evaluator]\n"
      "  - san: spiffe://clinic.example/governance\n"
      "    principal: governance-console\n"
      "    roles: [governance, auditor]\n",
      "certs.yaml");
  ASSERT_TRUE(certs.ok()) << certs.status();
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ((*certs)[0].field, CertEntry::Field::kCommonName);
  EXPECT_EQ((*certs)[0].value, "ehr-gateway.clinic.example");
  EXPECT_EQ((*certs)[0].principal, "ehr-gateway");
  EXPECT_EQ((*certs)[1].field, CertEntry::Field::kSubjectAltName);
  EXPECT_EQ((*certs)[1].value, "spiffe://clinic.example/governance");
  EXPECT_EQ((*certs)[1].roles.ToString(), "governance,auditor");
}

TEST(ClientCertFileTest, RefusesBadEntries) {
  EXPECT_EQ(CertErrors("client_certs:\n  - principal: a\n    roles: "
                       "[auditor]\n"),
            "certs.yaml:2:5: give exactly one of 'common_name' and 'san' "
            "(the certificate field this entry matches)");
  EXPECT_EQ(CertErrors("client_certs:\n  - common_name: x\n    san: y\n"
                       "    principal: a\n    roles: [auditor]\n"),
            "certs.yaml:2:5: give exactly one of 'common_name' and 'san' "
            "(the certificate field this entry matches)");
  EXPECT_EQ(CertErrors("client_certs:\n  - common_name: x\n    principal: a\n"
                       "    roles: [auditor]\n  - common_name: x\n"
                       "    principal: b\n    roles: [auditor]\n"),
            "certs.yaml:5:18: common_name: the same common_name is already "
            "listed at certs.yaml:2:18");
  EXPECT_EQ(CertErrors("client_certs:\n  - san: x\n    principal: a\n"
                       "    roles: [superuser]\n"),
            "certs.yaml:4:13: unknown role 'superuser' (roles: evaluator, "
            "governance, auditor; admin)");
  EXPECT_EQ(CertErrors("tokens: []\n"),
            "certs.yaml:1:1: unknown key 'tokens' (expected 'client_certs')\n"
            "certs.yaml:1:1: missing 'client_certs'");
  // The same name as CN in one entry and SAN in another is two entries; a
  // certificate matching both is refused when it calls (ambiguous).
  EXPECT_EQ(CertErrors("client_certs:\n  - common_name: x\n    principal: a\n"
                       "    roles: [auditor]\n  - san: x\n    principal: b\n"
                       "    roles: [auditor]\n"),
            "");
}

TEST(ClientCertFileTest, LoadRefusesFilesOthersCanWrite) {
  const std::string dir = MakeTestDir("cert-modes");
  const std::string yaml =
      "client_certs:\n  - common_name: x\n    principal: a\n"
      "    roles: [auditor]\n";
  for (mode_t mode : {0664, 0646, 0666}) {
    const std::string path = WriteTestFile(dir, "certs.yaml", yaml, mode);
    absl::StatusOr<std::vector<CertEntry>> loaded = LoadClientCertFile(path);
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_THAT(loaded.status().message(),
                AllOf(HasSubstr("lets group or others write it"),
                      HasSubstr("chmod 0644")));
  }
  for (mode_t mode : {0644, 0600, 0444}) {
    const std::string path = WriteTestFile(dir, "certs.yaml", yaml, mode);
    EXPECT_TRUE(LoadClientCertFile(path).ok()) << std::oct << mode;
  }
}

TEST(CertTableTest, MatchesByCommonNameOrAnySan) {
  std::vector<CertEntry> entries(3);
  entries[0] = {CertEntry::Field::kCommonName, "gw", "ehr", RoleSet()};
  entries[1] = {CertEntry::Field::kSubjectAltName, "spiffe://x/gov", "gov",
                RoleSet()};
  entries[2] = {CertEntry::Field::kSubjectAltName, "gw", "other", RoleSet()};
  const CertTable table(entries);

  auto principals = [&](const PeerCertificate& cert) {
    std::vector<std::string> names;
    for (const CertEntry* e : table.Match(cert)) names.push_back(e->principal);
    return names;
  };
  EXPECT_THAT(principals({"gw", {}, ""}), ElementsAre("ehr"));
  EXPECT_THAT(principals({"someone", {"dns.example", "spiffe://x/gov"}, ""}),
              ElementsAre("gov"));
  EXPECT_THAT(principals({"nobody", {"a", "b"}, ""}), ElementsAre());
  EXPECT_THAT(principals({"", {}, ""}), ElementsAre());
  // Case and whitespace matter: matching is exact.
  EXPECT_THAT(principals({"GW", {" spiffe://x/gov"}, ""}), ElementsAre());
  // CN "gw" and SAN "gw" are different entries: ambiguous.
  EXPECT_THAT(principals({"gw", {"gw"}, ""}), ElementsAre("ehr", "other"));
  // One entry matched twice (the SAN listed twice) counts once.
  EXPECT_THAT(principals({"", {"spiffe://x/gov", "spiffe://x/gov"}, ""}),
              ElementsAre("gov"));
}

}  // namespace
}  // namespace stepwise::service::auth

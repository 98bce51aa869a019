#include "service/audit/subject_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <filesystem>
#include <random>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::ReadAll;
using ::stepwise::service::audit::testing::WriteAll;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(SubjectKeyTest, KnownAnswer) {
  // HMAC-SHA256 with key 00 01 .. 1f, computed independently (Python hmac).
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  absl::StatusOr<SubjectKey> key = SubjectKey::FromBytes(bytes);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(SubjectHash(*key, "patient-42"),
            "2afb1ae9a339adf399fc3da33f0bade772d378239c9bcdebc9bad6425e7c3c69");
  EXPECT_FALSE(SubjectKey::FromBytes("short").ok());
}

// Hash() computes HMAC from the padded keys itself; OpenSSL's HMAC() is
// the oracle, for seeded random keys and subjects of every length around
// SHA-256's 64-byte block.
TEST(SubjectKeyTest, AgreesWithOpenSslHmac) {
  std::mt19937 random(42);
  for (int round = 0; round < 200; ++round) {
    std::string bytes(kSubjectKeyBytes, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    absl::StatusOr<SubjectKey> key = SubjectKey::FromBytes(bytes);
    ASSERT_TRUE(key.ok());
    std::string subject(static_cast<size_t>(round % 150), '\0');
    for (char& c : subject) c = static_cast<char>(random());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    ASSERT_NE(HMAC(EVP_sha256(), bytes.data(), static_cast<int>(bytes.size()),
                   reinterpret_cast<const unsigned char*>(subject.data()),
                   subject.size(), mac, &size),
              nullptr);
    EXPECT_EQ(key->Hash(subject), absl::BytesToHexString(absl::string_view(
                                      reinterpret_cast<char*>(mac), size)))
        << round;
  }
}

TEST(SubjectKeyTest, CreatedOwnerOnlyOnFirstStartAndReused) {
  const std::string path = FreshDir() + "/subject.key";
  absl::StatusOr<SubjectKey> first = SubjectKey::LoadOrCreate(path);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(ReadAll(path), MatchesRegex("[0-9a-f]{64}\n"));

  absl::StatusOr<SubjectKey> second = SubjectKey::LoadOrCreate(path);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->Hash("MRN-1"), second->Hash("MRN-1"));
  EXPECT_NE(first->Hash("MRN-1"), first->Hash("MRN-2"));
}

TEST(SubjectKeyTest, TwoFreshKeysDiffer) {
  const std::string dir = FreshDir();
  absl::StatusOr<SubjectKey> a = SubjectKey::LoadOrCreate(dir + "/a.key");
  absl::StatusOr<SubjectKey> b = SubjectKey::LoadOrCreate(dir + "/b.key");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->Hash("x"), b->Hash("x"));
}

TEST(SubjectKeyTest, RefusesAKeyOthersCanRead) {
  const std::string path = FreshDir() + "/subject.key";
  ASSERT_TRUE(SubjectKey::LoadOrCreate(path).ok());
  for (mode_t mode : {0644, 0640, 0602}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    const absl::Status status = SubjectKey::LoadOrCreate(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(status.message(), HasSubstr("chmod 600"));
  }
}

TEST(SubjectKeyTest, RefusesAFileWithoutAKey) {
  const std::string path = FreshDir() + "/subject.key";
  WriteAll(path, "0123");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  const absl::Status status = SubjectKey::LoadOrCreate(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("holds 4 bytes"));
}

TEST(SubjectKeyTest, AcceptsRawAndHexKeys) {
  const std::string dir = FreshDir();
  const std::string raw = std::string(32, '\x07');
  WriteAll(dir + "/raw.key", raw);
  WriteAll(dir + "/hex.key", std::string(64, '7').replace(0, 64, [] {
    std::string h;
    for (int i = 0; i < 32; ++i) h += "07";
    return h;
  }()));
  ASSERT_EQ(::chmod((dir + "/raw.key").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((dir + "/hex.key").c_str(), 0600), 0);
  absl::StatusOr<SubjectKey> a = SubjectKey::LoadOrCreate(dir + "/raw.key");
  absl::StatusOr<SubjectKey> b = SubjectKey::LoadOrCreate(dir + "/hex.key");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->Hash("x"), b->Hash("x"));
  EXPECT_EQ(a->Hash("x"), SubjectKey::FromBytes(raw)->Hash("x"));
}

}  // namespace
}  // namespace stepwise::service::audit

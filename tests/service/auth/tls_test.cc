#include "service/auth/tls.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_certs.h"

namespace stepwise::service::auth {
namespace {

using ::stepwise::testing::KeyAndCert;
using ::stepwise::testing::MakeTestDir;
using ::stepwise::testing::TestCa;
using ::stepwise::testing::WriteTestFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  TlsTest()
      : ca_("stepwise test CA"),
        dir_(MakeTestDir("tls")),
        server_(ca_.Issue(testing::ServerSpec())) {
    files_.cert_chain =
        WriteTestFile(dir_, "server.crt", server_.cert_pem, 0644);
    files_.private_key = WriteTestFile(dir_, "server.key", server_.key_pem);
  }

  absl::Status Make() { return MakeServerCredentials(files_).status(); }

  TestCa ca_;
  std::string dir_;
  KeyAndCert server_;
  TlsFiles files_;
};

TEST_F(TlsTest, CertificateAndKey) { EXPECT_TRUE(Make().ok()) << Make(); }

TEST_F(TlsTest, WithClientCa) {
  files_.client_ca = WriteTestFile(dir_, "ca.crt", ca_.cert_pem(), 0644);
  EXPECT_TRUE(Make().ok()) << Make();
  files_.require_client_cert = true;
  EXPECT_TRUE(Make().ok()) << Make();
}

TEST_F(TlsTest, MissingFiles) {
  files_.cert_chain = dir_ + "/none.crt";
  EXPECT_EQ(Make().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("tls_cert: cannot read"), HasSubstr("none.crt"),
                    HasSubstr("No such file")));
}

TEST_F(TlsTest, MissingKey) {
  files_.private_key = dir_ + "/none.key";
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("tls_key: cannot read"), HasSubstr("none.key")));
}

TEST_F(TlsTest, NotPem) {
  WriteTestFile(dir_, "server.crt", "hello\n", 0644);
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("tls_cert: "), HasSubstr("server.crt"),
                    HasSubstr("holds no PEM certificate")));
  WriteTestFile(dir_, "server.crt", server_.cert_pem, 0644);
  WriteTestFile(dir_, "server.key", "not a key\n");
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("tls_key: "), HasSubstr("server.key"),
                    HasSubstr("holds no PEM private key")));
}

TEST_F(TlsTest, KeyOfAnotherCertificate) {
  const KeyAndCert other = ca_.Issue(testing::ClientSpec("other"));
  WriteTestFile(dir_, "server.key", other.key_pem);
  EXPECT_EQ(Make().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("server.key does not belong to the certificate "
                              "in"),
                    HasSubstr("server.crt")));
}

TEST_F(TlsTest, KeyReadableByOthers) {
  WriteTestFile(dir_, "server.key", server_.key_pem, 0640);
  EXPECT_THAT(Make().message(),
              AllOf(HasSubstr("tls_key: "), HasSubstr("lets group or others "
                                                      "read it")));
}

TEST_F(TlsTest, ExpiredCertificate) {
  const KeyAndCert expired = ca_.Issue(testing::ServerSpec(/*expired=*/true));
  WriteTestFile(dir_, "server.crt", expired.cert_pem, 0644);
  WriteTestFile(dir_, "server.key", expired.key_pem);
  EXPECT_THAT(Make().message(), HasSubstr("has expired"));
}

TEST_F(TlsTest, ClientCaProblems) {
  files_.client_ca = WriteTestFile(dir_, "ca.crt", "nothing\n", 0644);
  EXPECT_THAT(Make().message(), AllOf(HasSubstr("tls_client_ca: "),
                                      HasSubstr("holds no PEM certificate")));
  files_.client_ca.clear();
  files_.require_client_cert = true;
  EXPECT_THAT(Make().message(), HasSubstr("require_client_cert needs "
                                          "tls_client_ca"));
}

}  // namespace
}  // namespace stepwise::service::auth

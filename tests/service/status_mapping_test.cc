#include "service/status_mapping.h"

#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace stepwise::service {
namespace {

TEST(StatusMappingTest, BadRequestCarriesEveryViolation) {
  const absl::Status status = BadRequestStatus(
      {{"assessments[0].items.item4", "4 is outside 0..3 for phq9"},
       {"subject_id", "required"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const grpc::Status grpc_status = ToGrpcStatus(status);
  EXPECT_EQ(grpc_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(grpc_status.error_message().find("assessments[0].items.item4"),
            std::string::npos);

  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(grpc_status.error_details()));
  EXPECT_EQ(details.code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), kBadRequestTypeUrl);

  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(ExtractBadRequest(grpc_status, &bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 2);
  EXPECT_EQ(bad_request.field_violations(0).field(),
            "assessments[0].items.item4");
  EXPECT_EQ(bad_request.field_violations(0).description(),
            "4 is outside 0..3 for phq9");
  EXPECT_EQ(bad_request.field_violations(1).field(), "subject_id");
}

TEST(StatusMappingTest, EveryCodeMapsToTheSameGrpcCode) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), "why");
    const grpc::Status mapped = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(mapped.error_code()), code);
    if (code != 0) {
      EXPECT_EQ(mapped.error_message(), "why");
    }
    EXPECT_TRUE(mapped.error_details().empty());
  }
  // absl itself folds a code outside google.rpc.Code into UNKNOWN.
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "x"))
                .error_code(),
            grpc::StatusCode::UNKNOWN);
}

TEST(StatusMappingTest, NoDetailsNoBadRequest) {
  google::rpc::BadRequest bad_request;
  EXPECT_FALSE(ExtractBadRequest(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "x"), &bad_request));
  EXPECT_FALSE(ExtractBadRequest(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "x", "garbage\xff"),
      &bad_request));
}

TEST(StatusMappingTest, CodeNames) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::ALREADY_EXISTS), "ALREADY_EXISTS");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAVAILABLE), "UNAVAILABLE");
}

}  // namespace
}  // namespace stepwise::service

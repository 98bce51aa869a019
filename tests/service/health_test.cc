#include "service/health.h"

#include <memory>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace stepwise::service {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&health_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    health_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
  }

  grpc::Status Check(const std::string& service,
                     HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    HealthCheckRequest request;
    request.set_service(service);
    return stub_->Check(&context, request, response);
  }

  HealthService health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

TEST_F(HealthTest, NotServingUntilToldOtherwise) {
  HealthCheckResponse response;
  ASSERT_TRUE(Check("", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check("x.Y", &response).error_code(), grpc::StatusCode::NOT_FOUND);

  health_.SetStatus("x.Y", HealthCheckResponse::SERVING);
  health_.SetStatus("", HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check("x.Y", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  health_.SetAll(HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(Check("x.Y", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(Check("", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthTest, WatchSendsEveryChangeAndEndsAtShutdown) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  HealthCheckRequest request;
  auto stream = stub_->Watch(&context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(stream->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);

  health_.SetStatus("", HealthCheckResponse::SERVING);
  ASSERT_TRUE(stream->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  health_.Shutdown();
  ASSERT_TRUE(stream->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(stream->Read(&update));
  EXPECT_TRUE(stream->Finish().ok());

  // Draining is final.
  health_.SetStatus("", HealthCheckResponse::SERVING);
  EXPECT_EQ(health_.status(""), HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthTest, WatchOnAnUnknownServiceWaitsForIt) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  HealthCheckRequest request;
  request.set_service("later.Service");
  auto stream = stub_->Watch(&context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(stream->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  health_.SetStatus("later.Service", HealthCheckResponse::SERVING);
  ASSERT_TRUE(stream->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);
  context.TryCancel();
  while (stream->Read(&update)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace stepwise::service

// The operator's verbs for the gRPC service: `serve` (the same as the
// stepwise-server binary) and `call ADDRESS REQUEST.json` (architecture §6).
#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "service/config.h"
#include "service/run.h"
#include "service/status_mapping.h"
#include "stepwise/v1/service.grpc.pb.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

void RunCall(const std::string& address, const std::string& request_path,
             double timeout_seconds, int* exit_code) {
  absl::StatusOr<std::string> json = ReadFile(request_path);
  if (!json.ok()) {
    std::cerr << "stepwise: " << json.status().message() << "\n";
    *exit_code = kExitUsage;
    return;
  }
  absl::StatusOr<v1::EvaluateRequest> request = ParseRequestJson(*json);
  if (!request.ok()) {
    std::cout << "bad request: " << request_path << ": "
              << request.status().message() << "\n";
    *exit_code = kExitCheckFailed;
    return;
  }

  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = v1::DecisionService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  v1::Decision decision;
  const grpc::Status status = stub->Evaluate(&context, *request, &decision);
  if (status.ok()) {
    std::cout << ToJson(decision);
    *exit_code = kExitOk;
    return;
  }
  *exit_code = kExitCheckFailed;
  google::rpc::BadRequest bad_request;
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
      service::ExtractBadRequest(status, &bad_request)) {
    const int n = bad_request.field_violations_size();
    std::cout << "bad request: " << n << " violation" << (n == 1 ? "" : "s")
              << "\n";
    for (const auto& v : bad_request.field_violations()) {
      std::cout << "  " << v.field() << ": " << v.description() << "\n";
    }
    return;
  }
  std::cerr << "stepwise: " << address << ": "
            << service::StatusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
}

void RegisterServiceCommands(CLI::App& app, int* exit_code) {
  {
    auto* cmd = app.add_subcommand(
        "serve", "Start the gRPC service (the same as stepwise-server)");
    // Lives as long as the process: CLI11 writes into it while parsing.
    auto* flags = new service::ServerFlags();
    flags->Register(cmd);
    cmd->callback([flags, exit_code] {
      absl::StatusOr<service::ServerOptions> options = flags->Resolve();
      if (!options.ok()) {
        std::cerr << "stepwise: " << options.status().message() << "\n";
        *exit_code = kExitUsage;
        return;
      }
      *exit_code = service::RunServer(*options);
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "call",
        "Send one EvaluateRequest to a running server; print the "
        "Decision as JSON");
    auto* address = new std::string();
    auto* request = new std::string();
    auto* timeout = new double(10);
    cmd->add_option("ADDRESS", *address, "host:port, e.g. 127.0.0.1:50051")
        ->required();
    cmd->add_option("REQUEST", *request, "EvaluateRequest as JSON")->required();
    cmd->add_option("--timeout", *timeout, "deadline of the call, in seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->callback([=] { RunCall(*address, *request, *timeout, exit_code); });
  }
}

STEPWISE_REGISTER_COMMANDS(RegisterServiceCommands);

}  // namespace
}  // namespace stepwise::tools

// The operator's verbs for the gRPC service: `serve` (the same as the
// stepwise-server binary) and `call ADDRESS REQUEST.json` (architecture §6).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "grpcpp/grpcpp.h"
#include "service/config.h"
#include "service/run.h"
#include "service/status_mapping.h"
#include "stepwise/v1/service.grpc.pb.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

namespace stepwise::tools {
namespace {

// How `call` reaches a server with authentication and TLS
// (docs/security.md).
struct CallSecurity {
  std::string token_file;  // empty: $STEPWISE_TOKEN, if set
  std::string tls_ca;      // PEM CA of the server's certificate
  std::string tls_cert;    // PEM client certificate (mutual TLS)
  std::string tls_key;     // its private key
};

// The channel credentials and the bearer token ("" for none).
absl::Status PrepareSecurity(const CallSecurity& s,
                             std::shared_ptr<grpc::ChannelCredentials>* creds,
                             std::string* token) {
  if (!s.token_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(s.token_file);
    if (!text.ok()) return text.status();
    *token = std::string(absl::StripAsciiWhitespace(*text));
  } else if (const char* env = std::getenv("STEPWISE_TOKEN")) {
    *token = std::string(absl::StripAsciiWhitespace(env));
  }
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (s.tls_ca.empty() && s.tls_cert.empty()) {
    *creds = grpc::InsecureChannelCredentials();
    return absl::OkStatus();
  }
  grpc::SslCredentialsOptions options;  // no CA: the system's roots
  for (auto [path, field] : {std::pair{&s.tls_ca, &options.pem_root_certs},
                             std::pair{&s.tls_cert, &options.pem_cert_chain},
                             std::pair{&s.tls_key, &options.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = ReadFile(*path);
    if (!pem.ok()) return pem.status();
    *field = *std::move(pem);
  }
  *creds = grpc::SslCredentials(options);
  return absl::OkStatus();
}

void RunCall(const std::string& address, const std::string& request_path,
             double timeout_seconds, const CallSecurity& security,
             int* exit_code) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
  if (absl::Status s = PrepareSecurity(security, &credentials, &token);
      !s.ok()) {
    std::cerr << "stepwise: " << s.message() << "\n";
    *exit_code = kExitUsage;
    return;
  }
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

  auto channel = grpc::CreateChannel(address, credentials);
  auto stub = v1::DecisionService::NewStub(channel);
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
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
    auto* security = new CallSecurity();
    cmd->add_option("--token-file", security->token_file,
                    "file holding the bearer token (default: $STEPWISE_TOKEN)");
    cmd->add_option("--tls-ca", security->tls_ca,
                    "PEM CA of the server's certificate; turns TLS on");
    cmd->add_option("--tls-cert", security->tls_cert,
                    "PEM client certificate (mutual TLS); turns TLS on");
    cmd->add_option("--tls-key", security->tls_key,
                    "PEM private key of --tls-cert");
    cmd->callback(
        [=] { RunCall(*address, *request, *timeout, *security, exit_code); });
  }
}

STEPWISE_REGISTER_COMMANDS(RegisterServiceCommands);

}  // namespace
}  // namespace stepwise::tools

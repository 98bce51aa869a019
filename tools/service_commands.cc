// The operator's verbs for the gRPC service: `serve` (the same as the
// stepwise-server binary) and `call ADDRESS REQUEST.json` (architecture §6),
// which with `--rpc` also calls the GovernanceService (ValidateRuleset,
// ReloadRuleset, GetDecision, VerifyAudit) for governance staff and
// auditors.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
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

// The request of a GovernanceService call: `path` as protobuf JSON, or the
// empty message when no file is given.
template <typename Request>
absl::StatusOr<Request> ReadRequest(const std::string& path) {
  Request request;
  if (path.empty()) return request;
  absl::StatusOr<std::string> json = ReadFile(path);
  if (!json.ok()) return json.status();
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(*json), &request);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a ", Request::descriptor()->name(), ": ",
                     std::string(status.message())));
  }
  return request;
}

// One GovernanceService (or GetRuleset) call: prints the answer as JSON and
// returns the exit code it implies.
template <typename Request, typename Response, typename Call>
int CallGovernance(const std::string& request_path, Call call,
                   const std::function<bool(const Response&)>& passed,
                   grpc::Status* status) {
  absl::StatusOr<Request> request = ReadRequest<Request>(request_path);
  if (!request.ok()) {
    std::cerr << "stepwise: " << request.status().message() << "\n";
    // A file that is not the request is a bad request (1), as for Evaluate;
    // one that cannot be read is a usage error (2).
    return absl::IsInvalidArgument(request.status()) ? kExitCheckFailed
                                                     : kExitUsage;
  }
  Response response;
  *status = call(*request, &response);
  if (!status->ok()) return kExitCheckFailed;
  std::cout << ToJson(response);
  return passed(response) ? kExitOk : kExitCheckFailed;
}

void RunCall(const std::string& address, const std::string& rpc,
             const std::string& request_path, double timeout_seconds,
             const CallSecurity& security, int* exit_code) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
  if (absl::Status s = PrepareSecurity(security, &credentials, &token);
      !s.ok()) {
    std::cerr << "stepwise: " << s.message() << "\n";
    *exit_code = kExitUsage;
    return;
  }
  auto channel = grpc::CreateChannel(address, credentials);
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));

  if (rpc != "Evaluate") {
    auto decisions = v1::DecisionService::NewStub(channel);
    auto governance = v1::GovernanceService::NewStub(channel);
    grpc::Status status;
    if (rpc == "GetRuleset") {
      *exit_code = CallGovernance<v1::GetRulesetRequest, v1::RulesetInfo>(
          request_path,
          [&](const auto& req, auto* resp) {
            return decisions->GetRuleset(&context, req, resp);
          },
          [](const v1::RulesetInfo&) { return true; }, &status);
    } else if (rpc == "ValidateRuleset") {
      *exit_code = CallGovernance<v1::ValidateRulesetRequest,
                                  v1::ValidateRulesetResponse>(
          request_path,
          [&](const auto& req, auto* resp) {
            return governance->ValidateRuleset(&context, req, resp);
          },
          [](const v1::ValidateRulesetResponse& r) { return r.ok(); }, &status);
    } else if (rpc == "ReloadRuleset") {
      // Activated, or unchanged (the same sha256 is already active): 0.
      *exit_code =
          CallGovernance<v1::ReloadRulesetRequest, v1::ReloadRulesetResponse>(
              request_path,
              [&](const auto& req, auto* resp) {
                return governance->ReloadRuleset(&context, req, resp);
              },
              [](const v1::ReloadRulesetResponse& r) {
                return r.activated() || r.validation().ok();
              },
              &status);
    } else if (rpc == "GetDecision") {
      *exit_code = CallGovernance<v1::GetDecisionRequest, v1::AuditRecord>(
          request_path,
          [&](const auto& req, auto* resp) {
            return governance->GetDecision(&context, req, resp);
          },
          [](const v1::AuditRecord&) { return true; }, &status);
    } else {
      *exit_code =
          CallGovernance<v1::VerifyAuditRequest, v1::VerifyAuditResponse>(
              request_path,
              [&](const auto& req, auto* resp) {
                return governance->VerifyAudit(&context, req, resp);
              },
              [](const v1::VerifyAuditResponse& r) { return r.ok(); }, &status);
    }
    if (!status.ok()) {
      std::cerr << "stepwise: " << address << ": "
                << service::StatusCodeName(status.error_code()) << ": "
                << status.error_message() << "\n";
    }
    return;
  }

  if (request_path.empty()) {
    std::cerr << "stepwise: call: Evaluate needs REQUEST.json\n";
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

  auto stub = v1::DecisionService::NewStub(channel);
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
    auto* flags = Keep<service::ServerFlags>();
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
        "Send one request to a running server and print the answer as JSON "
        "(default: an EvaluateRequest, answered by a Decision)");
    auto* address = Keep<std::string>();
    auto* request = Keep<std::string>();
    auto* rpc = Keep<std::string>("Evaluate");
    auto* timeout = Keep<double>(10);
    cmd->add_option("ADDRESS", *address, "host:port, e.g. 127.0.0.1:50051")
        ->required();
    cmd->add_option("REQUEST", *request,
                    "the request as JSON (required for Evaluate; for the "
                    "others the empty request by default, e.g. "
                    "{\"decisionId\": \"...\"} for GetDecision)");
    cmd->add_option("--rpc", *rpc,
                    "the method: Evaluate, GetRuleset, ValidateRuleset, "
                    "ReloadRuleset, GetDecision or VerifyAudit")
        ->capture_default_str()
        ->check(CLI::IsMember({"Evaluate", "GetRuleset", "ValidateRuleset",
                               "ReloadRuleset", "GetDecision", "VerifyAudit"}));
    cmd->add_option("--timeout", *timeout, "deadline of the call, in seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    auto* security = Keep<CallSecurity>();
    cmd->add_option("--token-file", security->token_file,
                    "file holding the bearer token (default: $STEPWISE_TOKEN)");
    cmd->add_option("--tls-ca", security->tls_ca,
                    "PEM CA of the server's certificate; turns TLS on");
    cmd->add_option("--tls-cert", security->tls_cert,
                    "PEM client certificate (mutual TLS); turns TLS on");
    cmd->add_option("--tls-key", security->tls_key,
                    "PEM private key of --tls-cert");
    cmd->callback([=] {
      RunCall(*address, *rpc, *request, *timeout, *security, exit_code);
    });
  }
}

STEPWISE_REGISTER_COMMANDS(RegisterServiceCommands);

}  // namespace
}  // namespace stepwise::tools

// stepwise-bare-server: the baseline of the load benchmark. The same gRPC
// callback service and server settings as stepwise-server, an empty handler:
// Evaluate answers a canned Decision (the bytes of a real stepwise answer,
// so messages have the same size) without evaluating or auditing anything.
//
//   stepwise-bare-server --port 0 --response DECISION.bin
// prints "stepwise-bare-server listening on 127.0.0.1:PORT", then serves
// until SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace {

class BareDecisionService final
    : public stepwise::v1::DecisionService::CallbackService {
 public:
  explicit BareDecisionService(stepwise::v1::Decision canned)
      : canned_(std::move(canned)) {}

  grpc::ServerUnaryReactor* Evaluate(
      grpc::CallbackServerContext* context,
      const stepwise::v1::EvaluateRequest* request,
      stepwise::v1::Decision* response) override {
    *response = canned_;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const stepwise::v1::Decision canned_;
};

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // As stepwise-server does (service/run.cc): Debian's Abseil is built with
  // Mutex deadlock detection on, a graph update under a global lock on every
  // lock gRPC takes. A baseline that kept it would be slower than a bare
  // server needs to be and flatter the ratio.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  int port = 0;
  std::string response_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") {
      port = std::stoi(argv[i + 1]);
    } else if (flag == "--response") {
      response_path = argv[i + 1];
    } else {
      std::cerr << "usage: stepwise-bare-server [--port N] [--response FILE]\n";
      return 2;
    }
  }
  stepwise::v1::Decision canned;
  if (!response_path.empty()) {
    std::ifstream in(response_path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in || !canned.ParseFromString(bytes.str())) {
      std::cerr << "stepwise-bare-server: cannot read " << response_path
                << "\n";
      return 2;
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  BareDecisionService service(std::move(canned));
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &selected);
  builder.RegisterService(&service);
  // The settings stepwise-server uses (service/server.cc), so that only the
  // handler differs.
  builder.SetMaxReceiveMessageSize(1 << 20);
  builder.SetMaxSendMessageSize(4 << 20);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 256);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected == 0) {
    std::cerr << "stepwise-bare-server: cannot listen on port " << port << "\n";
    return 1;
  }
  std::cout << "stepwise-bare-server listening on 127.0.0.1:" << selected
            << std::endl;
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

// stepwise-server: the gRPC decision service (docs/service.md).
#include <iostream>

#include "CLI/CLI.hpp"
#include "service/config.h"
#include "service/run.h"

int main(int argc, char** argv) {
  CLI::App app{
      "stepwise-server: evaluates stepped-care rules over gRPC; every "
      "decision is audited before it is answered"};
  stepwise::service::ServerFlags flags;
  flags.Register(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  absl::StatusOr<stepwise::service::ServerOptions> options = flags.Resolve();
  if (!options.ok()) {
    std::cerr << "stepwise-server: " << options.status().message() << std::endl;
    return 2;
  }
  return stepwise::service::RunServer(*options);
}

// stepwise: the command line for rule authors, governance staff and
// operators. See tools/commands.h for how verbs are added.
#include <iostream>
#include <vector>

#include "tools/commands.h"

namespace stepwise::tools {
namespace {
std::vector<Registrar>& Registrars() {
  static auto* registrars = new std::vector<Registrar>();
  return *registrars;
}
}  // namespace

bool AddRegistrar(Registrar registrar) {
  Registrars().push_back(registrar);
  return true;
}
}  // namespace stepwise::tools

int main(int argc, char** argv) {
  using namespace stepwise::tools;
  CLI::App app{
      "stepwise: stepped-care rule engine for governance staff and operators"};
  app.require_subcommand(1);
  app.fallthrough(false);
  int exit_code = kExitOk;
  for (Registrar registrar : Registrars()) registrar(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

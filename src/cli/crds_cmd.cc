#include "cli/crds_cmd.h"

#include <iostream>

#include "api/crd.h"

namespace tidegate::cli {

void addCrdsCommand(CLI::App& app) {
  auto* crds = app.add_subcommand(
      "crds", "Print the CustomResourceDefinitions of tidegate's kinds (multi-document YAML)");
  crds->callback([] {
    auto text = api::generateCrds();
    if (!text) {
      std::cerr << text.error().message << "\n";
      throw CLI::RuntimeError(1);
    }
    std::cout << *text;
  });
}

}  // namespace tidegate::cli

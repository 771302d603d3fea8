#pragma once
// `tidegate crds`: prints the CustomResourceDefinitions of tidegate's own kinds, generated from
// the configuration loader (api/crd.h); deploy/base/crds.yaml is its committed output.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

void addCrdsCommand(CLI::App& app);

}  // namespace tidegate::cli

#pragma once
// Reads every document of a YAML stream: YAML::LoadAll, guarded against a yaml-cpp 0.7 (Debian
// 12) bug found by fuzzing: on some malformed streams (a lone `,` is enough) its parser keeps
// reporting an empty document without consuming input, and LoadAll loops forever, allocating a
// node each time, until the process runs out of memory (yaml-cpp issue #1040, fixed upstream
// after 0.8). The stream's documents are walked once without building nodes first; a document
// that starts where the previous one started is that loop, and is a syntax error here.
// Pure; any thread.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace tidegate::api {

// The documents of `text`, as YAML::LoadAll gives them. Throws YAML::ParserException (a
// YAML::Exception, with the mark of the error) on malformed YAML, as LoadAll does.
std::vector<YAML::Node> loadAllDocuments(const std::string& text);

}  // namespace tidegate::api

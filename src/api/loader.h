#pragma once
// Loads a configuration file: YAML, several documents, each a Kubernetes-shaped resource
// (apiVersion, kind, metadata, spec). Strict: an unknown kind, an unknown field, a wrong type,
// a missing required field or a dangling reference is an error naming the file, the document's
// index, the line and the field path, e.g.
//   examples/lora.yaml: document 2 (InferenceModel inferencemodel-sample), line 14:
//     spec.targetModels[1].weight: expected an integer, got "ten"
// Loading runs off the data path (start-up, SIGHUP); the result is shared immutably.

#include <string>

#include "api/resources.h"
#include "common/result.h"

namespace tidegate::api {

Result<Config> loadConfig(const std::string& path);
// Same, from text (tests); `name` stands for the file in messages.
Result<Config> parseConfig(const std::string& text, const std::string& name);

class SchemaRecorder;
// Same, also recording into `recorder` (if not null) the schema of every field each document's
// reader looks at, present or not: its type, bounds, allowed values and requiredness (schema.h).
// Recording never changes what is accepted. The CRD generator (crd.h) runs this over exemplars.
Result<Config> parseConfig(const std::string& text, const std::string& name,
                           SchemaRecorder* recorder);

}  // namespace tidegate::api

#pragma once
// Loads a configuration file: YAML, several documents, each a Kubernetes-shaped resource
// (apiVersion, kind, metadata, spec). Strict: an unknown kind, an unknown field, a wrong type,
// a missing required field or a dangling reference is an error naming the file, the document's
// index, the line and the field path, e.g.
//   examples/lora.yaml: document 2 (InferenceModel inferencemodel-sample), line 14:
//     spec.targetModels[1].weight: expected an integer, got "ten"
// Loading runs off the data path (start-up, SIGHUP); the result is shared immutably.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/resources.h"
#include "common/result.h"

namespace tidegate::api {

// Documents that come from elsewhere than the file (Kubernetes objects), each named for
// messages by `source` ("kubernetes InferencePool default/qwen-pool").
struct Document {
  std::string source;
  std::string text;  // one YAML (or JSON) document
};
// A Kubernetes Secret's key, by namespace and name: nullopt when there is no such Secret or key.
using SecretLookup = std::function<std::optional<std::string>(
    const std::string& ns, const std::string& name, const std::string& key)>;
struct LoadOptions {
  std::vector<Document> extra;  // loaded after the file's documents, as if in it
  // APIKey spec.secretRef {name, key}: the Secret's value. Unset: such references are errors
  // (they need serve --kubernetes or --kubeconfig).
  SecretLookup secret;
};

Result<Config> loadConfig(const std::string& path);
Result<Config> loadConfig(const std::string& path, const LoadOptions& options);
// Same, from text (tests); `name` stands for the file in messages.
Result<Config> parseConfig(const std::string& text, const std::string& name);

class SchemaRecorder;
// Same, also recording into `recorder` (if not null) the schema of every field each document's
// reader looks at, present or not: its type, bounds, allowed values and requiredness (schema.h).
// Recording never changes what is accepted. The CRD generator (crd.h) runs this over exemplars.
Result<Config> parseConfig(const std::string& text, const std::string& name,
                           SchemaRecorder* recorder);
// The file's text and the options' documents together.
Result<Config> parseConfig(const std::string& text, const std::string& name,
                           const LoadOptions& options);

}  // namespace tidegate::api

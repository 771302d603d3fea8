#pragma once
// CustomResourceDefinitions (apiextensions.k8s.io/v1) for tidegate's own kinds (group
// tidegate.io, version v1alpha1), generated from the configuration loader itself: the loader
// reads exemplar documents of every kind with schema recording on (loader.h, schema.h), and the
// recorded tree becomes each CRD's structural OpenAPI v3 schema. The reader functions of
// loader.cc are the one source of truth; `tidegate crds` prints the result and
// deploy/base/crds.yaml is a committed copy that a test keeps equal to it.
//
// What the schema cannot say stays with the loader, which checks every configuration whatever its
// source: rules across fields (maxReplicas >= minReplicas, maxNodes >= minNodes, exactly one of
// sha256 or secretRef, metric or prometheus, certificateFile with keyFile, a metric target > 0,
// controller/scrape intervals > 0, ledger.flushInterval <= 1s, tls.handshakeTimeout > 0), the
// port range of HOST:PORT strings, that a Prometheus url parses, that secretRef's variable or
// file exists, and references between resources (an APIKey's plan, one Gateway, unique names).
// The schema is stricter in one way: Kubernetes types YAML scalars, so `cpu: 4` or
// `minVersion: 1.3` must be quoted to be strings, and a duration is a string or a whole number.
//
// Pure functions of the code: no I/O, no environment; safe from any thread.

#include <string>
#include <vector>

#include "api/schema.h"
#include "common/result.h"

namespace tidegate::api {

inline constexpr const char* kCrdGroup = "tidegate.io";
inline constexpr const char* kCrdVersion = "v1alpha1";

// How one kind appears in Kubernetes. Its schema is not here: it comes from the loader.
struct CrdKind {
  struct Column {
    std::string name, type, json_path, description;
  };
  std::string kind, plural, singular;
  std::vector<std::string> short_names;
  bool namespaced = true;
  bool status_subresource = false;  // tidegate reports into .status (replicas, conditions)
  std::vector<Column> columns;      // additionalPrinterColumns (Age is appended)
  std::string description;
};

// The six kinds, in the order they are printed.
const std::vector<CrdKind>& crdKinds();

// Documents that together reach every field the loader reads for these kinds: every list
// non-empty, every branch taken (a fixed and an elastic NodePool, tls given, metrics by name and
// by Prometheus query, a command as a string and as a list). They form one valid configuration.
const std::string& crdExemplars();

// The loader's schema of every kind: the exemplars parsed with recording on. An error if they do
// not load (the loader changed under them).
Result<SchemaRecorder> recordLoaderSchema();

// Why `recorder` cannot be turned into structural schemas: untyped fields (read by a raw get()
// and never by a typed accessor), fields read with two types, lists without an item schema,
// objects without known fields, a kind of crdKinds() never read. Empty when it can; each entry
// names the kind and field path.
std::vector<std::string> schemaGaps(const SchemaRecorder& recorder);

// All CRDs as one multi-document YAML text with a header comment: what `tidegate crds` prints.
// An error listing schemaGaps() if there are any.
Result<std::string> generateCrds();

}  // namespace tidegate::api

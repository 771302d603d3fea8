#pragma once
// The shape of what the configuration loader accepts, recorded while it reads: one tree per
// resource kind, keyed by field name, each node holding a field's type, bounds, allowed values,
// pattern and which of its fields are required. The loader's `Fields` accessors (loader.cc)
// write it as a side effect of parsing, so the recording never changes what is accepted; the CRD
// generator (crd.h) turns it into OpenAPI v3. Nobody writes a schema by hand, so the schema and
// the loader cannot drift.
//
// Merging: a field read twice (two documents, two list items) keeps one node; bounds widen;
// a field read with two different types is a conflict, kept for the generator to report.
// A field is required if every present map read at that place required it (a map that is absent
// from the document does not count: `tls.certificateFile` is required when `tls` is given).
//
// Owned by whoever runs the recording parse (parseConfig's `recorder`); single-threaded.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tidegate::api {

struct SchemaNode {
  enum class Type {
    kUnset,        // marked known by a raw get() and never typed: a gap the generator reports
    kString,       // scalars read as text
    kInteger,      // minimum/maximum
    kNumber,       // minimum/maximum
    kBoolean,      //
    kObject,       // properties, or `values` for maps of arbitrary keys
    kArray,        // items
    kIntOrString,  // durations: 30s, or a bare number of seconds
    kAny,          // accepted as is (ignored fields, unions such as a string or a list)
  };

  Type type = Type::kUnset;
  std::string description;
  std::string pattern;               // kString, kIntOrString: an anchored ECMAScript regex
  std::vector<std::string> choices;  // kString: the allowed values, in the loader's order
  std::optional<double> minimum, maximum;
  std::optional<long> min_items;                                  // kArray
  std::map<std::string, std::unique_ptr<SchemaNode>> properties;  // kObject
  std::unique_ptr<SchemaNode> values;                // kObject with arbitrary keys (string maps)
  std::unique_ptr<SchemaNode> items;                 // kArray
  int visits = 0;                                    // kObject: present maps read here
  std::map<std::string, std::set<int>> required_in;  // field -> the visits that required it
  std::vector<std::string> conflicts;                // "read as a string and as an integer"

  // The node of field `key` of this object, created untyped on first use.
  SchemaNode& property(const std::string& key);
  SchemaNode& itemSchema();
  SchemaNode& valueSchema();
  // Sets the type; a different type already set is recorded as a conflict.
  void setType(Type t);
  // Widens [minimum, maximum] to include [lo, hi].
  void widen(double lo, double hi);
  // Field `key` was required by the read numbered `visit` of this object.
  void requireIn(const std::string& key, int visit) { required_in[key].insert(visit); }
  // Required fields: those every present read of this object required.
  std::vector<std::string> required() const;
};

const char* typeName(SchemaNode::Type t);

// One schema per (apiVersion, kind), filled by a recording parse.
class SchemaRecorder {
 public:
  // The root of a document of this kind, created empty on first use.
  SchemaNode& root(const std::string& api_version, const std::string& kind);
  // Null if no document of this kind was read.
  const SchemaNode* find(const std::string& api_version, const std::string& kind) const;

 private:
  std::map<std::pair<std::string, std::string>, std::unique_ptr<SchemaNode>> roots_;
};

}  // namespace tidegate::api

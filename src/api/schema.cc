#include "api/schema.h"

#include <algorithm>

namespace tidegate::api {

const char* typeName(SchemaNode::Type t) {
  switch (t) {
    case SchemaNode::Type::kUnset:
      return "untyped";
    case SchemaNode::Type::kString:
      return "a string";
    case SchemaNode::Type::kInteger:
      return "an integer";
    case SchemaNode::Type::kNumber:
      return "a number";
    case SchemaNode::Type::kBoolean:
      return "a boolean";
    case SchemaNode::Type::kObject:
      return "a map";
    case SchemaNode::Type::kArray:
      return "a list";
    case SchemaNode::Type::kIntOrString:
      return "a duration";
    case SchemaNode::Type::kAny:
      return "anything";
  }
  return "?";
}

SchemaNode& SchemaNode::property(const std::string& key) {
  auto& p = properties[key];
  if (!p) p = std::make_unique<SchemaNode>();
  return *p;
}

SchemaNode& SchemaNode::itemSchema() {
  if (!items) items = std::make_unique<SchemaNode>();
  return *items;
}

SchemaNode& SchemaNode::valueSchema() {
  if (!values) values = std::make_unique<SchemaNode>();
  return *values;
}

void SchemaNode::setType(Type t) {
  if (type == Type::kUnset) {
    type = t;
  } else if (type != t) {
    const std::string c = std::string("read as ") + typeName(type) + " and as " + typeName(t);
    if (std::find(conflicts.begin(), conflicts.end(), c) == conflicts.end()) conflicts.push_back(c);
  }
}

void SchemaNode::widen(double lo, double hi) {
  minimum = minimum ? std::min(*minimum, lo) : lo;
  maximum = maximum ? std::max(*maximum, hi) : hi;
}

std::vector<std::string> SchemaNode::required() const {
  std::vector<std::string> out;
  if (visits == 0) return out;
  for (const auto& [key, in] : required_in)
    if (static_cast<int>(in.size()) == visits) out.push_back(key);
  return out;
}

SchemaNode& SchemaRecorder::root(const std::string& api_version, const std::string& kind) {
  auto& r = roots_[{api_version, kind}];
  if (!r) r = std::make_unique<SchemaNode>();
  return *r;
}

const SchemaNode* SchemaRecorder::find(const std::string& api_version,
                                       const std::string& kind) const {
  const auto it = roots_.find({api_version, kind});
  return it == roots_.end() ? nullptr : it->second.get();
}

}  // namespace tidegate::api

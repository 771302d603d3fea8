#pragma once
// Small JSON helpers over Boost.JSON shared by the engine, the gateway and the load generator.

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tidegate::json {

namespace bj = boost::json;

// Appends `s` as a JSON string literal (with quotes) to `out`.
void appendQuoted(std::string& out, std::string_view s);
std::string quoted(std::string_view s);

// Parses `text` into a value; returns nullopt (and sets `error`) on malformed JSON.
std::optional<bj::value> parse(std::string_view text, std::string& error);

}  // namespace tidegate::json

#include "gateway/pipeline/stages.h"

#include "common/tokenizer.h"
#include "gateway/stats.h"

namespace tidegate::gateway::pipeline {

using http::Status;
using V = boost::beast::http::verb;

std::variant<Api, Denial> endpoint(std::string_view path, V method) {
  const bool generation =
      path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings";
  const bool models = path == "/v1/models";
  if (!generation && !models)
    return Denial{Status::not_found,
                  http::openaiError("no route for " + std::string(path), "not_found_error"),
                  {}};
  const V want = models ? V::get : V::post;
  if (method != want)
    return Denial{Status::method_not_allowed,
                  http::openaiError("method " + std::string(boost::beast::http::to_string(method)) +
                                        " not allowed on " + std::string(path),
                                    "invalid_request_error"),
                  {{"Allow", models ? "GET" : "POST"}}};
  return models ? Api::kModels : Api::kGeneration;
}

std::optional<Denial> parse(std::string_view content_type, std::string_view body,
                            RequestFields& out) {
  if (!content_type.empty() && content_type.find("application/json") == std::string_view::npos)
    return Denial{
        Status::unsupported_media_type,
        http::openaiError("Content-Type must be application/json, got " + std::string(content_type),
                          "invalid_request_error"),
        {}};
  if (auto e = scanRequest(body, out))
    return Denial{
        Status::bad_request, http::openaiError(e->message, "invalid_request_error", e->param), {}};
  return std::nullopt;
}

std::optional<Denial> route(const Snapshot& snap, const RequestInfo& request, const Principal& who,
                            const RequestFields& fields, std::uint64_t draw,
                            std::optional<Route>& out) {
  auto serves = [&](std::size_t p, const std::string& model) {
    for (const auto& e : snap.pool_endpoints[p])
      if (e->metrics()->lists(model)) return true;
    return false;
  };
  auto r = snap.table->route(request, fields.model, draw, serves);
  if (auto* re = std::get_if<RouteError>(&r))
    return Denial{Status::not_found,
                  http::openaiError(re->message, "not_found_error", "model", "model_not_found"),
                  {}};
  out = std::get<Route>(r);
  out->criticality = Access::criticality(who, out->criticality);
  return std::nullopt;
}

double tokensToReserve(const Principal& who, const RequestFields& fields) {
  if (!who.plan) return 0;
  return static_cast<double>(static_cast<long>(tokenizer::count(fields.prompt_text)) +
                             (fields.max_tokens > 0 ? fields.max_tokens : 256));
}

}  // namespace tidegate::gateway::pipeline

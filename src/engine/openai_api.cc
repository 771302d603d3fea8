#include "engine/openai_api.h"

#include "common/json_util.h"
#include "common/tokenizer.h"

namespace tidegate::engine {

namespace bj = boost::json;

namespace {

ApiError bad(std::string message, std::string param = {}) {
  return ApiError{http::Status::bad_request, std::move(message), std::move(param), {}};
}

std::string_view kindName(bj::kind k) {
  switch (k) {
    case bj::kind::null:
      return "null";
    case bj::kind::bool_:
      return "boolean";
    case bj::kind::int64:
    case bj::kind::uint64:
      return "integer";
    case bj::kind::double_:
      return "number";
    case bj::kind::string:
      return "string";
    case bj::kind::array:
      return "array";
    case bj::kind::object:
      return "object";
  }
  return "value";
}

ApiError wrongType(std::string_view field, std::string_view want, const bj::value& got) {
  return bad(std::string(field) + ": expected " + std::string(want) + ", got " +
                 std::string(kindName(got.kind())),
             std::string(field));
}

// Reads an optional integer field into `out`; returns an error for other types.
std::optional<ApiError> optInt(const bj::object& o, std::string_view field,
                               std::optional<long long>& out) {
  auto it = o.find(field);
  if (it == o.end() || it->value().is_null()) return std::nullopt;
  const auto& v = it->value();
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64()) {
    out = static_cast<long long>(v.get_uint64());
  } else if (v.is_double() &&
             v.get_double() == static_cast<double>(static_cast<long long>(v.get_double()))) {
    out = static_cast<long long>(v.get_double());
  } else {
    return wrongType(field, "integer", v);
  }
  return std::nullopt;
}

std::optional<ApiError> optNumber(const bj::object& o, std::string_view field, double lo,
                                  double hi) {
  auto it = o.find(field);
  if (it == o.end() || it->value().is_null()) return std::nullopt;
  const auto& v = it->value();
  if (!v.is_number()) return wrongType(field, "number", v);
  double d = v.to_number<double>();
  if (d < lo || d > hi)
    return bad(std::string(field) + " must be between " + std::to_string(lo) + " and " +
                   std::to_string(hi) + ", got " + std::to_string(d),
               std::string(field));
  return std::nullopt;
}

std::optional<ApiError> optBool(const bj::object& o, std::string_view field, bool& out) {
  auto it = o.find(field);
  if (it == o.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_bool()) return wrongType(field, "boolean", it->value());
  out = it->value().get_bool();
  return std::nullopt;
}

// Message content: a string, or an array of parts of which only text parts are supported.
std::variant<std::string, ApiError> messageContent(const bj::value& v, std::size_t i) {
  const std::string field = "messages[" + std::to_string(i) + "].content";
  if (v.is_null()) return std::string();
  if (v.is_string()) return std::string(v.get_string());
  if (!v.is_array()) return wrongType(field, "string or array", v);
  std::string text;
  for (const auto& part : v.get_array()) {
    const auto* po = part.if_object();
    if (!po) return wrongType(field + "[]", "object", part);
    const auto* type = po->if_contains("type");
    if (!type || !type->is_string() || type->get_string() != "text")
      return bad(field + ": only parts of type \"text\" are supported by this model", field);
    const auto* t = po->if_contains("text");
    if (!t || !t->is_string()) return bad(field + "[].text: expected string", field);
    text += t->get_string();
  }
  return text;
}

// Parses the body into an object and reads its required string `model`.
std::optional<ApiError> parseObjectWithModel(std::string_view body,
                                             std::optional<bj::value>& parsed, std::string& model) {
  std::string err;
  parsed = json::parse(body, err);
  if (!parsed) return bad("malformed JSON in request body: " + err);
  const auto* o = parsed->if_object();
  if (!o) return bad("request body must be a JSON object");
  const auto* m = o->if_contains("model");
  if (!m) return bad("missing required field: model", "model");
  if (!m->is_string()) return wrongType("model", "string", *m);
  model = std::string(m->get_string());
  return std::nullopt;
}

}  // namespace

std::variant<GenParams, ApiError> parseGeneration(Endpoint endpoint, std::string_view body) {
  GenParams p;
  p.endpoint = endpoint;
  std::optional<bj::value> parsed;
  if (auto e = parseObjectWithModel(body, parsed, p.model)) return *e;
  const bj::object* o = &parsed->get_object();

  if (endpoint == Endpoint::kChat) {
    const auto* msgs = o->if_contains("messages");
    if (!msgs) return bad("missing required field: messages", "messages");
    if (!msgs->is_array()) return wrongType("messages", "array", *msgs);
    if (msgs->get_array().empty()) return bad("messages must not be empty", "messages");
    std::size_t i = 0;
    for (const auto& m : msgs->get_array()) {
      const auto* mo = m.if_object();
      if (!mo) return wrongType("messages[" + std::to_string(i) + "]", "object", m);
      const auto* role = mo->if_contains("role");
      if (!role || !role->is_string())
        return bad("messages[" + std::to_string(i) + "].role: expected string",
                   "messages[" + std::to_string(i) + "].role");
      std::string content;
      if (const auto* c = mo->if_contains("content")) {
        auto r = messageContent(*c, i);
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        content = std::move(std::get<std::string>(r));
      }
      // Role markers stand for the chat template's special tokens.
      p.prompt_ids.push_back(tokenizer::tokenId("<|start|>"));
      p.prompt_ids.push_back(tokenizer::tokenId(role->get_string()));
      tokenizer::encode(content, p.prompt_ids);
      p.prompt_ids.push_back(tokenizer::tokenId("<|end|>"));
      p.prompt_ids.push_back(tokenizer::tokenId("\n"));
      if (role->get_string() == "user") p.echo_source = content;
      ++i;
    }
    p.prompt_ids.push_back(tokenizer::tokenId("<|start|>"));
    p.prompt_ids.push_back(tokenizer::tokenId("assistant"));
    p.prompt_ids.push_back(tokenizer::tokenId("\n"));
  } else {
    const auto* prompt = o->if_contains("prompt");
    if (!prompt) return bad("missing required field: prompt", "prompt");
    if (prompt->is_string()) {
      p.echo_source = std::string(prompt->get_string());
      tokenizer::encode(p.echo_source, p.prompt_ids);
    } else if (prompt->is_array()) {
      const auto& arr = prompt->get_array();
      if (arr.empty()) return bad("prompt must not be empty", "prompt");
      if (arr[0].is_string()) {
        if (arr.size() != 1)
          return bad("batched prompts are not supported; send one prompt", "prompt");
        p.echo_source = std::string(arr[0].get_string());
        tokenizer::encode(p.echo_source, p.prompt_ids);
      } else {
        for (const auto& t : arr) {
          if (!t.is_int64() || t.get_int64() < 0)
            return bad("prompt: expected a string or an array of token ids", "prompt");
          p.prompt_ids.push_back(static_cast<std::uint32_t>(t.get_int64()));
          if (!p.echo_source.empty()) p.echo_source += ' ';
          p.echo_source += std::to_string(t.get_int64());
        }
      }
    } else {
      return wrongType("prompt", "string or array", *prompt);
    }
    if (p.prompt_ids.empty()) return bad("prompt must not be empty", "prompt");
  }

  std::optional<long long> max_tokens, n, seed;
  if (auto e = optInt(*o, "max_tokens", max_tokens)) return *e;
  if (endpoint == Endpoint::kChat && !max_tokens) {
    if (auto e = optInt(*o, "max_completion_tokens", max_tokens)) return *e;
  }
  if (max_tokens) {
    if (*max_tokens < 1)
      return bad("max_tokens must be at least 1, got " + std::to_string(*max_tokens), "max_tokens");
    if (*max_tokens > (1 << 30)) return bad("max_tokens is too large", "max_tokens");
    p.max_tokens = static_cast<int>(*max_tokens);
  }
  if (auto e = optInt(*o, "n", n)) return *e;
  if (n && *n != 1) return bad("only n=1 is supported, got n=" + std::to_string(*n), "n");
  if (auto e = optInt(*o, "seed", seed)) return *e;
  if (seed) p.seed = static_cast<std::uint64_t>(*seed);
  if (auto e = optNumber(*o, "temperature", 0.0, 2.0)) return *e;
  if (auto e = optNumber(*o, "top_p", 0.0, 1.0)) return *e;
  if (auto e = optNumber(*o, "presence_penalty", -2.0, 2.0)) return *e;
  if (auto e = optNumber(*o, "frequency_penalty", -2.0, 2.0)) return *e;
  if (auto e = optBool(*o, "stream", p.stream)) return *e;
  if (auto e = optBool(*o, "ignore_eos", p.ignore_eos)) return *e;

  if (const auto* stop = o->if_contains("stop"); stop && !stop->is_null()) {
    if (stop->is_string()) {
      if (!stop->get_string().empty()) p.stop.emplace_back(stop->get_string());
    } else if (stop->is_array()) {
      for (const auto& s : stop->get_array()) {
        if (!s.is_string()) return bad("stop: expected a string or an array of strings", "stop");
        if (!s.get_string().empty()) p.stop.emplace_back(s.get_string());
      }
    } else {
      return wrongType("stop", "string or array", *stop);
    }
  }
  if (const auto* so = o->if_contains("stream_options"); so && !so->is_null()) {
    if (!so->is_object()) return wrongType("stream_options", "object", *so);
    if (!p.stream)
      return bad("stream_options is only allowed when stream is true", "stream_options");
    if (auto e = optBool(so->get_object(), "include_usage", p.include_usage)) return *e;
    if (auto e = optBool(so->get_object(), "continuous_usage_stats", p.continuous_usage)) return *e;
    p.continuous_usage = p.continuous_usage && p.include_usage;  // as vLLM: only with usage
  }
  return p;
}

std::variant<EmbeddingParams, ApiError> parseEmbeddings(std::string_view body) {
  EmbeddingParams p;
  std::optional<bj::value> parsed;
  if (auto e = parseObjectWithModel(body, parsed, p.model)) return *e;
  const bj::object* o = &parsed->get_object();
  const auto* input = o->if_contains("input");
  if (!input) return bad("missing required field: input", "input");
  auto addIds = [&](const bj::array& ids) -> bool {
    std::string text;
    for (const auto& t : ids) {
      if (!t.is_int64()) return false;
      if (!text.empty()) text += ' ';
      text += std::to_string(t.get_int64());
    }
    p.tokens.push_back(ids.size());
    p.inputs.push_back(std::move(text));
    return true;
  };
  if (input->is_string()) {
    p.inputs.emplace_back(input->get_string());
    p.tokens.push_back(tokenizer::count(input->get_string()));
  } else if (input->is_array()) {
    const auto& arr = input->get_array();
    if (arr.empty()) return bad("input must not be empty", "input");
    if (arr[0].is_string()) {
      for (const auto& s : arr) {
        if (!s.is_string()) return bad("input: expected an array of strings", "input");
        p.inputs.emplace_back(s.get_string());
        p.tokens.push_back(tokenizer::count(s.get_string()));
      }
    } else if (arr[0].is_array()) {
      for (const auto& ids : arr)
        if (!ids.is_array() || !addIds(ids.get_array()))
          return bad("input: expected arrays of token ids", "input");
    } else if (!addIds(arr)) {
      return bad("input: expected a string, strings, or token ids", "input");
    }
  } else {
    return wrongType("input", "string or array", *input);
  }
  return p;
}

ResponseWriter::ResponseWriter(Endpoint endpoint, std::string id, long long created,
                               std::string model, bool include_usage, bool continuous_usage)
    : endpoint_(endpoint),
      id_(std::move(id)),
      created_(created),
      model_(std::move(model)),
      include_usage_(include_usage),
      continuous_usage_(continuous_usage) {
  prefix_ = "data: {\"id\":";
  json::appendQuoted(prefix_, id_);
  prefix_ += endpoint_ == Endpoint::kChat ? ",\"object\":\"chat.completion.chunk\""
                                          : ",\"object\":\"text_completion\"";
  prefix_ += ",\"created\":" + std::to_string(created_) + ",\"model\":";
  json::appendQuoted(prefix_, model_);
  prefix_ += ",\"choices\":[{\"index\":0,";
}

std::string ResponseWriter::roleChunk() const {
  if (endpoint_ != Endpoint::kChat) return {};
  std::string out = prefix_;
  out +=
      "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":"
      "null}]";
  if (include_usage_) out += ",\"usage\":null";
  out += "}\n\n";
  return out;
}

void ResponseWriter::appendContentChunk(std::string& out, std::string_view text,
                                        std::string_view finish_reason,
                                        std::string_view stop_reason, int prompt_tokens,
                                        int completion_tokens) const {
  out += prefix_;
  if (endpoint_ == Endpoint::kChat) {
    out += "\"delta\":{\"content\":";
    json::appendQuoted(out, text);
    out += "},";
  } else {
    out += "\"text\":";
    json::appendQuoted(out, text);
    out += ',';
  }
  out += "\"logprobs\":null,\"finish_reason\":";
  if (finish_reason.empty()) {
    out += "null";
  } else {
    json::appendQuoted(out, finish_reason);
    out += ",\"stop_reason\":";
    if (stop_reason.empty()) {
      out += "null";
    } else {
      json::appendQuoted(out, stop_reason);
    }
  }
  out += "}]";
  if (continuous_usage_) {
    out += ",\"usage\":{\"prompt_tokens\":" + std::to_string(prompt_tokens) +
           ",\"total_tokens\":" + std::to_string(prompt_tokens + completion_tokens) +
           ",\"completion_tokens\":" + std::to_string(completion_tokens) + "}";
  } else if (include_usage_) {
    out += ",\"usage\":null";
  }
  out += "}\n\n";
}

namespace {
bj::object usageObject(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"completion_tokens", completion_tokens}};
}
}  // namespace

std::string ResponseWriter::usageChunk(int prompt_tokens, int completion_tokens) const {
  bj::object o{
      {"id", id_},
      {"object", endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
      {"created", created_},
      {"model", model_},
      {"choices", bj::array{}},
      {"usage", usageObject(prompt_tokens, completion_tokens)}};
  return "data: " + bj::serialize(o) + "\n\n";
}

std::string ResponseWriter::fullBody(std::string_view text, std::string_view finish_reason,
                                     std::string_view stop_reason, int prompt_tokens,
                                     int completion_tokens) const {
  bj::object choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  choice["stop_reason"] = stop_reason.empty() ? bj::value(nullptr) : bj::value(stop_reason);
  if (endpoint_ == Endpoint::kChat) {
    choice["message"] =
        bj::object{{"role", "assistant"}, {"content", text}, {"tool_calls", bj::array{}}};
  } else {
    choice["text"] = text;
  }
  bj::object o{{"id", id_},
               {"object", endpoint_ == Endpoint::kChat ? "chat.completion" : "text_completion"},
               {"created", created_},
               {"model", model_},
               {"choices", bj::array{std::move(choice)}},
               {"usage", usageObject(prompt_tokens, completion_tokens)}};
  return bj::serialize(o);
}

}  // namespace tidegate::engine

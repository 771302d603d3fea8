#include "common/http_wire.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <charconv>
#include <cstring>

namespace tidegate::http {

using namespace std::string_view_literals;
namespace asio = boost::asio;
namespace bhttp = beast::http;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Room for a typical head, so appending it allocates once.
constexpr std::size_t kHeadReserve = 384;

// Appends a header name or value with CR and LF replaced: a value taken from a request (an
// x-request-id, say) must not start a header of its own. They are rare, so they are looked for
// with memchr (vectorised) rather than a byte at a time.
void appendSafe(std::string& out, std::string_view s) {
  const std::size_t at = out.size();
  out.append(s);
  char* p = out.data() + at;
  if (!std::memchr(p, '\r', s.size()) && !std::memchr(p, '\n', s.size())) return;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (p[i] == '\r' || p[i] == '\n') p[i] = ' ';
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  appendSafe(out, name);
  out.append(": "sv);
  appendSafe(out, value);
  out.append("\r\n"sv);
}

void appendNumber(std::string& out, std::size_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

bool framingField(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection");
}

// A later header of the same name replaces this one (the `set` semantics callers expect).
bool replacedLater(const WireHeaders& h, std::size_t i) {
  for (std::size_t j = i + 1; j < h.size(); ++j)
    if (beast::iequals(h[j].first, h[i].first)) return true;
  return false;
}

}  // namespace

void appendResponseHead(std::string& out, bhttp::status status, unsigned version,
                        std::string_view server, std::string_view content_type,
                        const WireHeaders& extra, bool keep_alive, std::size_t body_size,
                        bool chunked) {
  out.reserve(out.size() + kHeadReserve);
  const auto code = static_cast<unsigned>(status);
  out.append(version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ");
  appendNumber(out, code);
  out.push_back(' ');
  const auto reason = bhttp::obsolete_reason(status);
  out.append(reason.data(), reason.size());
  out.append("\r\n"sv);
  if (!server.empty()) appendField(out, "Server", server);
  bool content_type_given = false;
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const auto& [k, v] = extra[i];
    if (beast::iequals(k, "content-type")) content_type_given = true;
    if (framingField(k) || beast::iequals(k, "server") || replacedLater(extra, i)) continue;
    appendField(out, k, v);
  }
  if (!content_type.empty() && !content_type_given) appendField(out, "Content-Type", content_type);
  if (chunked) {
    out.append("Transfer-Encoding: chunked\r\n"sv);
  } else if (!(code < 200 || code == 204 || code == 304)) {
    out.append("Content-Length: "sv);
    appendNumber(out, body_size);
    out.append("\r\n"sv);
  }
  if (!keep_alive && version >= 11) out.append("Connection: close\r\n"sv);
  if (keep_alive && version < 11) out.append("Connection: keep-alive\r\n"sv);
  out.append("\r\n"sv);
}

void appendRequestHead(std::string& out, std::string_view method, std::string_view target,
                       std::string_view host, const WireHeaders& headers, std::size_t body_size) {
  out.reserve(out.size() + kHeadReserve);
  appendSafe(out, method);
  out.push_back(' ');
  appendSafe(out, target);
  out.append(" HTTP/1.1\r\n"sv);
  const bool host_given = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
    return beast::iequals(h.first, "host");
  });
  if (!host_given) appendField(out, "Host", host);
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [k, v] = headers[i];
    if (beast::iequals(k, "content-length") || beast::iequals(k, "transfer-encoding") ||
        replacedLater(headers, i))
      continue;
    appendField(out, k, v);
  }
  if (body_size > 0 || method == "POST" || method == "PUT" || method == "OPTIONS") {
    out.append("Content-Length: "sv);
    appendNumber(out, body_size);
    out.append("\r\n"sv);
  }
  out.append("\r\n"sv);
}

template <bool isRequest>
asio::awaitable<beast::error_code> readMessage(tls::Stream& stream, beast::flat_buffer& buffer,
                                               bhttp::basic_parser<isRequest>& parser,
                                               bool head_only, std::size_t read_size) {
  auto done = [&] { return head_only ? parser.is_header_done() : parser.is_done(); };
  beast::error_code ec;
  while (!done()) {
    if (buffer.size() > 0) {
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (!ec) continue;
      if (ec != bhttp::error::need_more) co_return ec;
      ec = {};
    }
    const std::size_t size = readSize(buffer, parser, read_size);
    if (size == 0) co_return bhttp::error::buffer_overflow;
    const auto space = buffer.prepare(size);
    auto [rec, n] = co_await stream.io([&](auto& s) { return s.async_read_some(space, kTuple); });
    buffer.commit(n);
    if (rec == asio::error::eof) {
      // As Beast's read: an end of stream ends a message whose body runs to the close, is a
      // cut message after some of it, and is end_of_stream before any of it.
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      parser.put_eof(ec);
      co_return ec;
    }
    if (rec) co_return stream.classify(rec);
  }
  co_return ec;
}

template asio::awaitable<beast::error_code> readMessage<true>(tls::Stream&, beast::flat_buffer&,
                                                              bhttp::basic_parser<true>&, bool,
                                                              std::size_t);
template asio::awaitable<beast::error_code> readMessage<false>(tls::Stream&, beast::flat_buffer&,
                                                               bhttp::basic_parser<false>&, bool,
                                                               std::size_t);

void ResponseParser::on_field_impl(bhttp::field name, beast::string_view name_string,
                                   beast::string_view value, beast::error_code&) {
  if (name == bhttp::field::content_type) content_type_.assign(value.data(), value.size());
  if (name == bhttp::field::keep_alive) keep_alive_.assign(value.data(), value.size());
  if (fields_) fields_->insert(name, name_string, value);
}

}  // namespace tidegate::http

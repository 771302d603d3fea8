#include "common/http_wire.h"

#include "common/http_request.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <cassert>
#include <charconv>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tidegate::http {

using namespace std::string_view_literals;
namespace asio = boost::asio;
namespace bhttp = beast::http;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Replaces CR and LF in a header name or value just written: a value taken from a request (an
// x-request-id, say) must not start a header of its own. Sixteen bytes a step with SSE2.
void blankLineBreaks(char* p, std::size_t n) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))) != 0) break;
  }
#endif
  for (; i < n; ++i)
    if (p[i] == '\r' || p[i] == '\n') p[i] = ' ';
}

// Writes a head into a string sized once for all of it: a head was a dozen appends, each with
// its capacity check, and two memchr calls for each header written.
class HeadWriter {
 public:
  // `most`: an upper bound of what will be written.
  HeadWriter(std::string& out, std::size_t most) : out_(out), at_(out.size()) {
    out_.resize(at_ + most);
  }
  ~HeadWriter() { out_.resize(at_); }
  void raw(std::string_view s) {
    assert(at_ + s.size() <= out_.size() && "kFixedBytes is too small for the lines written");
    std::memcpy(out_.data() + at_, s.data(), s.size());
    at_ += s.size();
  }
  // A name or value: CR and LF become spaces.
  void safe(std::string_view s) {
    raw(s);
    blankLineBreaks(out_.data() + at_ - s.size(), s.size());
  }
  void field(std::string_view name, std::string_view value) {
    safe(name);
    raw(": "sv);
    safe(value);
    raw("\r\n"sv);
  }
  void number(std::size_t n) {
    const auto r = std::to_chars(out_.data() + at_, out_.data() + out_.size(), n);
    at_ = static_cast<std::size_t>(r.ptr - out_.data());
  }

 private:
  std::string& out_;
  std::size_t at_;
};

// The bytes a field line of these takes, at most.
std::size_t fieldBytes(std::string_view name, std::string_view value) {
  return name.size() + value.size() + 4;
}
std::size_t fieldBytes(const WireHeaders& h) {
  std::size_t n = 0;
  for (const auto& [k, v] : h) n += fieldBytes(k, v);
  return n;
}
// The fixed lines a head may add: the status or request line's own bytes, the framing and
// Connection lines, and the blank line.
constexpr std::size_t kFixedBytes = 160;

bool framingField(std::string_view name) {
  const auto f = parse::classify(name);
  return f == parse::Field::kContentLength || f == parse::Field::kTransferEncoding ||
         f == parse::Field::kConnection;
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
  const auto code = static_cast<unsigned>(status);
  const auto reason = bhttp::obsolete_reason(status);
  HeadWriter w(out, kFixedBytes + reason.size() + fieldBytes("Server", server) +
                        fieldBytes("Content-Type", content_type) + fieldBytes(extra));
  w.raw(version >= 11 ? "HTTP/1.1 "sv : "HTTP/1.0 "sv);
  w.number(code);
  w.raw(" "sv);
  w.raw({reason.data(), reason.size()});
  w.raw("\r\n"sv);
  if (!server.empty()) w.field("Server", server);
  bool content_type_given = false;
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const auto& [k, v] = extra[i];
    if (beast::iequals(k, "content-type")) content_type_given = true;
    if (framingField(k) || beast::iequals(k, "server") || replacedLater(extra, i)) continue;
    w.field(k, v);
  }
  if (!content_type.empty() && !content_type_given) w.field("Content-Type", content_type);
  if (chunked) {
    w.raw("Transfer-Encoding: chunked\r\n"sv);
  } else if (!parse::bodiless(code)) {
    w.raw("Content-Length: "sv);
    w.number(body_size);
    w.raw("\r\n"sv);
  }
  if (!keep_alive && version >= 11) w.raw("Connection: close\r\n"sv);
  if (keep_alive && version < 11) w.raw("Connection: keep-alive\r\n"sv);
  w.raw("\r\n"sv);
}

void appendRequestHead(std::string& out, std::string_view method, std::string_view target,
                       std::string_view host, const WireHeaders& headers, std::size_t body_size) {
  HeadWriter w(out, kFixedBytes + method.size() + target.size() + fieldBytes("Host", host) +
                        fieldBytes(headers));
  w.safe(method);
  w.raw(" "sv);
  w.safe(target);
  w.raw(" HTTP/1.1\r\n"sv);
  const bool host_given = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
    return beast::iequals(h.first, "host");
  });
  if (!host_given) w.field("Host", host);
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [k, v] = headers[i];
    // Two compares that fail at once on the names' lengths: cheaper here than classify().
    if (beast::iequals(k, "content-length") || beast::iequals(k, "transfer-encoding") ||
        replacedLater(headers, i))
      continue;
    w.field(k, v);
  }
  if (body_size > 0 || method == "POST" || method == "PUT" || method == "OPTIONS") {
    w.raw("Content-Length: "sv);
    w.number(body_size);
    w.raw("\r\n"sv);
  }
  w.raw("\r\n"sv);
}

template <class Parser>
asio::awaitable<beast::error_code> readMessage(tls::Stream& stream, beast::flat_buffer& buffer,
                                               Parser& parser, bool head_only,
                                               std::size_t read_size) {
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

template asio::awaitable<beast::error_code> readMessage(tls::Stream&, beast::flat_buffer&,
                                                        RequestReader&, bool, std::size_t);
template asio::awaitable<beast::error_code> readMessage(tls::Stream&, beast::flat_buffer&,
                                                        ResponseParser&, bool, std::size_t);

}  // namespace tidegate::http

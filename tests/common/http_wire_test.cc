// The wire format shared by the HTTP server and client, without a socket: the heads they write
// and the response parser the client and the gateway's relay read with (socket-level behaviour
// is in http_server_test.cc and http_client_test.cc).
#include "common/http_wire.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <string>

namespace tidegate::http {
namespace {

namespace bhttp = beast::http;

TEST(HttpWire, ResponseHeads) {
  struct Case {
    const char* name;
    bhttp::status status;
    unsigned version;
    WireHeaders extra;
    bool keep_alive;
    bool chunked;
    std::string want;
  } cases[] = {
      {"plain",
       bhttp::status::ok,
       11,
       {{"x-a", "1"}},
       true,
       false,
       "HTTP/1.1 200 OK\r\nServer: s\r\nx-a: 1\r\nContent-Type: application/json\r\n"
       "Content-Length: 5\r\n\r\n"},
      {"close",
       bhttp::status::bad_request,
       11,
       {},
       false,
       false,
       "HTTP/1.1 400 Bad Request\r\nServer: s\r\nContent-Type: application/json\r\n"
       "Content-Length: 5\r\nConnection: close\r\n\r\n"},
      {"HTTP/1.0 keep-alive",
       bhttp::status::ok,
       10,
       {},
       true,
       false,
       "HTTP/1.0 200 OK\r\nServer: s\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
       "Connection: keep-alive\r\n\r\n"},
      {"chunked",
       bhttp::status::ok,
       11,
       {},
       true,
       true,
       "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Type: application/json\r\n"
       "Transfer-Encoding: chunked\r\n\r\n"},
      {"no body length on 204",
       bhttp::status::no_content,
       11,
       {},
       true,
       false,
       "HTTP/1.1 204 No Content\r\nServer: s\r\nContent-Type: application/json\r\n\r\n"},
      // The framing is the server's: a caller's Content-Length, Transfer-Encoding or Connection
      // would contradict it.
      {"framing headers dropped",
       bhttp::status::ok,
       11,
       {{"Content-Length", "99"}, {"transfer-encoding", "gzip"}, {"Connection", "upgrade"}},
       true,
       false,
       "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
       "\r\n"},
      {"content type replaced, last value wins",
       bhttp::status::ok,
       11,
       {{"content-type", "text/plain"}, {"x-b", "1"}, {"X-B", "2"}},
       true,
       false,
       "HTTP/1.1 200 OK\r\nServer: s\r\ncontent-type: text/plain\r\nX-B: 2\r\n"
       "Content-Length: 5\r\n\r\n"},
      // A value from a request must not start a header (or a response) of its own.
      {"no header injection",
       bhttp::status::ok,
       11,
       {{"x-request-id", "a\r\nSet-Cookie: x"}},
       true,
       false,
       "HTTP/1.1 200 OK\r\nServer: s\r\nx-request-id: a  Set-Cookie: x\r\n"
       "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n"},
      // Past the first sixteen bytes, in a block of its own and in the tail after it.
      {"no header injection in long values",
       bhttp::status::ok,
       11,
       {{"x-long", "0123456789abcdefghij\r\nSet-Cookie: x-yz-0123\n"}},
       true,
       false,
       "HTTP/1.1 200 OK\r\nServer: s\r\nx-long: 0123456789abcdefghij  Set-Cookie: x-yz-0123 \r\n"
       "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n"},
  };
  for (const auto& c : cases) {
    std::string out;
    appendResponseHead(out, c.status, c.version, "s", "application/json", c.extra, c.keep_alive, 5,
                       c.chunked);
    EXPECT_EQ(out, c.want) << c.name;
  }
}

TEST(HttpWire, RequestHeads) {
  std::string out;
  appendRequestHead(out, "POST", "/v1/x", "h:1", {{"Content-Type", "application/json"}}, 3);
  EXPECT_EQ(out,
            "POST /v1/x HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
            "Content-Length: 3\r\n\r\n");
  out.clear();
  // A GET without a body says no length; a caller's Host replaces the default; a caller's
  // framing is dropped.
  appendRequestHead(out, "GET", "/metrics", "h:1",
                    {{"host", "api.example"}, {"Content-Length", "7"}, {"x", "a\nb"}}, 0);
  EXPECT_EQ(out, "GET /metrics HTTP/1.1\r\nhost: api.example\r\nx: a b\r\n\r\n");
  out.clear();
  appendRequestHead(out, "POST", "/x", "h:1", {}, 0);
  EXPECT_EQ(out, "POST /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n");
}

// Feeds `text` to the parser in pieces of `step` bytes, as reads would deliver it, and returns
// the body pieces it handed out, joined.
std::string parseInPieces(ResponseParser& p, std::string_view text, std::size_t step,
                          beast::error_code& ec) {
  std::string body, pending;
  for (std::size_t at = 0; at < text.size() && !p.is_done();) {
    pending.append(text.substr(at, step));
    at += step;
    while (!pending.empty() && !p.is_done()) {
      p.clearBody();
      const auto used = p.put(boost::asio::buffer(pending.data(), pending.size()), ec);
      body.append(p.body());
      pending.erase(0, used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec) return body;
    }
  }
  return body;
}

TEST(HttpWire, ResponseParserHandsOutChunkedAndSizedBodies) {
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nKeep-Alive: timeout=5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "6\r\ndata: \r\n3\r\nab\n\r\n0\r\n\r\n";
  for (std::size_t step : {1u, 3u, 7u, 4096u}) {
    ResponseParser p(false);
    beast::error_code ec;
    EXPECT_EQ(parseInPieces(p, chunked, step, ec), "data: ab\n") << step;
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.status(), 200u);
    EXPECT_EQ(p.contentType(), "text/event-stream");
    EXPECT_EQ(p.keepAliveHeader(), "timeout=5");
    EXPECT_TRUE(p.chunked());
    EXPECT_EQ(p.fields(), nullptr) << "headers kept only when asked";
  }
  ResponseParser p(true);
  beast::error_code ec;
  EXPECT_EQ(parseInPieces(p, "HTTP/1.0 503 Busy\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy",
                          5, ec),
            "busy");
  EXPECT_FALSE(ec);
  EXPECT_EQ(p.status(), 503u);
  EXPECT_EQ(p.version(), 10u);
  EXPECT_FALSE(p.keep_alive());
  ASSERT_NE(p.fields(), nullptr);
  EXPECT_EQ((*p.fields())["retry-after"], "1");
}

// A body runs to the close when nothing else frames it, and then the connection is not reused;
// a 204 or 304 has none whatever its head says.
TEST(HttpWire, ResponseParserFramesBodiesAsRfc9112Says) {
  for (std::size_t step : {1u, 5u, 4096u}) {
    SCOPED_TRACE(step);
    ResponseParser to_close(false);
    beast::error_code ec;
    EXPECT_EQ(parseInPieces(to_close, "HTTP/1.1 200 OK\r\n\r\nuntil the end", step, ec),
              "until the end");
    EXPECT_FALSE(ec);
    EXPECT_FALSE(to_close.is_done()) << "only the close ends it";
    EXPECT_FALSE(to_close.keep_alive());
    to_close.put_eof(ec);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(to_close.is_done());

    ResponseParser cut(false);
    parseInPieces(cut, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nfour", step, ec);
    EXPECT_FALSE(ec);
    cut.put_eof(ec);
    EXPECT_EQ(ec, bhttp::error::partial_message);

    ResponseParser empty(false);
    EXPECT_EQ(
        parseInPieces(empty, "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n", step, ec), "");
    EXPECT_FALSE(ec);
    EXPECT_TRUE(empty.is_done());
    EXPECT_TRUE(empty.keep_alive());

    // Empty list elements are nothing (RFC 9110 §5.6.1): still chunked.
    ResponseParser listed(false);
    EXPECT_EQ(parseInPieces(listed,
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, \r\n"
                            "Transfer-Encoding:\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                            step, ec),
              "ok");
    EXPECT_TRUE(listed.is_done());
    EXPECT_TRUE(listed.keep_alive());

    // HTTP/1.0 knows no Transfer-Encoding: the connection closes after it.
    ResponseParser old_te(false);
    parseInPieces(old_te,
                  "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
                  "\r\n0\r\n\r\n",
                  step, ec);
    EXPECT_TRUE(old_te.is_done());
    EXPECT_FALSE(old_te.keep_alive());

    ResponseParser closing(false);
    parseInPieces(closing, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                  step, ec);
    EXPECT_TRUE(closing.is_done());
    EXPECT_FALSE(closing.keep_alive());
  }
}

// A read asks for 512 bytes (Beast's read_size) until the head gives the body's length, then
// for the rest of the body, up to the cap: a 2.7 KB response took nine reads, now two.
TEST(HttpWire, ReadsAskForTheRestOfABodyOfKnownLength) {
  auto sizeAfter = [](std::string_view head, std::size_t buffered, std::size_t max) {
    ResponseParser p(false);
    beast::error_code ec;
    p.put(boost::asio::buffer(head.data(), head.size()), ec);
    EXPECT_TRUE(!ec || ec == bhttp::error::need_more) << ec.message();
    beast::flat_buffer buffer;
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(buffered),
                                           boost::asio::buffer(std::string(buffered, 'x'))));
    return readSize(buffer, p, max);
  };
  EXPECT_EQ(sizeAfter("", 0, 16384), 512u) << "no head yet";
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nContent-Le", 0, 16384), 512u) << "half a head";
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nContent-Length: 2700\r\n\r\n", 0, 16384), 2700u);
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nContent-Length: 2700\r\n\r\n", 700, 16384), 2000u)
      << "what the buffer holds is not asked for again";
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0, 16384), 16384u);
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, 16384), 512u)
      << "never less than Beast's read size";
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 16384), 512u)
      << "a stream's events keep the small reads";
  EXPECT_EQ(sizeAfter("HTTP/1.1 200 OK\r\n\r\n", 0, 16384), 512u) << "a body to the close";
}

TEST(HttpWire, ResponseParserRefusesMalformedResponses) {
  const struct {
    const char* bytes;
    bhttp::error error;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", bhttp::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       bhttp::error::bad_content_length},
      // Both framings: which one a proxy in front reads is a request smuggling question.
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       bhttp::error::bad_transfer_encoding},
      {"HTTP/1.1 2000 OK\r\n\r\n", bhttp::error::bad_status},
      {"HTTP/1.1 20x OK\r\n\r\n", bhttp::error::bad_status},
      {"HTTP/2 200 OK\r\n\r\n", bhttp::error::bad_version},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", bhttp::error::bad_reason},
      {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", bhttp::error::bad_line_ending},
      {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", bhttp::error::bad_obs_fold},
      {"HTTP/1.1 200 OK\r\nX:\x7f\r\n\r\n", bhttp::error::bad_field},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bhttp::error::bad_chunk},
  };
  for (const auto& c : cases) {
    for (std::size_t step : {1u, 4096u}) {
      ResponseParser p(false);
      beast::error_code ec;
      parseInPieces(p, c.bytes, step, ec);
      EXPECT_EQ(ec, c.error) << c.bytes << " in steps of " << step;
    }
  }
}

}  // namespace
}  // namespace tidegate::http

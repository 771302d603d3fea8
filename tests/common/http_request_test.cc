// How the server reads a request, without a socket: the parser with its limits, the checks of a
// request's head, and the answers to failed reads (the socket-level behaviour is in
// http_server_test.cc).
#include "common/http_request.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <vector>

namespace tidegate::http {
namespace {

namespace bhttp = beast::http;

// Parses the head in `text` with the server's limits; the error of the parse, if any.
beast::error_code parseHead(RequestReader& reader, std::string_view text) {
  beast::error_code ec;
  reader.put(boost::asio::buffer(text.data(), text.size()), ec);
  return ec;
}

// What reading `bytes` as one connection's next request came to, fed `step` bytes at a time as
// readMessage feeds the reader (unconsumed bytes stay ahead of the next ones).
struct Read {
  beast::error_code ec;  // {} when a whole request was read
  Request req;
  std::string rest;  // bytes not consumed
};
Read readRequest(std::string_view bytes, std::size_t step, std::size_t max_header = 1024,
                 std::size_t max_body = 1024) {
  RequestReader reader(max_header, max_body);
  Read r;
  std::string buffer;
  std::size_t fed = 0;
  while (!reader.is_done()) {
    if (!buffer.empty()) {
      const auto used = reader.put(boost::asio::buffer(buffer.data(), buffer.size()), r.ec);
      buffer.erase(0, used);
      if (r.ec && r.ec != bhttp::error::need_more) break;
      r.ec = {};
      if (reader.is_done()) break;
      if (used > 0 && !buffer.empty()) continue;
    }
    if (fed == bytes.size()) {
      reader.put_eof(r.ec);
      break;
    }
    const auto n = std::min(step, bytes.size() - fed);
    buffer.append(bytes.substr(fed, n));
    fed += n;
  }
  r.rest = buffer + std::string(bytes.substr(fed));
  r.req = reader.release();
  return r;
}

TEST(HttpRequest, HeadsWithFaultyFramingAreRefused) {
  struct Case {
    const char* head;
    const char* refusal;  // "" when the body may be read
  } cases[] = {
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,Chunked\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "only chunked"},
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\xff\r\n\r\n",
       "malformed Transfer-Encoding"},
      // A transfer parameter: chunked has none, and a proxy in front would not read it as chunked.
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
       "malformed Transfer-Encoding"},
      {"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
      // A second field, even an empty one: a proxy in front may join them otherwise.
      {"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n",
       "more than once"},
      {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", "OPTIONS"},
      {"GET v1/models HTTP/1.1\r\nHost: h\r\n\r\n", "neither origin-form nor absolute-form"},
      // RFC 9112 §3.2: HTTP/1.1 needs a Host, even with an absolute-form target; HTTP/1.0 does not.
      {"GET /v1/models HTTP/1.1\r\n\r\n", "must have a Host header"},
      {"GET http://h.test/v1/models HTTP/1.1\r\n\r\n", "must have a Host header"},
      {"GET /v1/models HTTP/1.0\r\n\r\n", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.head);
    RequestReader parser(1024, 1024);
    ASSERT_FALSE(parseHead(parser, c.head));
    const auto refusal = checkHead(parser.get());
    if (*c.refusal == '\0') {
      EXPECT_FALSE(refusal) << refusal->message;
    } else {
      ASSERT_TRUE(refusal);
      EXPECT_EQ(refusal->status, Status::bad_request);
      EXPECT_NE(refusal->message.find(c.refusal), std::string::npos) << refusal->message;
    }
  }
}

TEST(HttpRequest, AbsoluteFormTargetsBecomeOriginForm) {
  RequestReader parser(1024, 1024);
  ASSERT_FALSE(parseHead(parser, "GET http://h.test:8080?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"));
  ASSERT_FALSE(checkHead(parser.get()));
  EXPECT_EQ(parser.get().target(), "/?q=1");
  EXPECT_EQ(parser.get()[bhttp::field::host], "h.test:8080");
}

TEST(HttpRequest, FailedReadsAreAnsweredByKind) {
  const auto body = readFailure(bhttp::error::body_limit, 1024);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->status, Status::payload_too_large);
  EXPECT_EQ(body->message, "request body exceeds 1024 bytes");
  const auto header = readFailure(bhttp::error::header_limit, 1024);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->status, Status::request_header_fields_too_large);
  const auto bad = readFailure(bhttp::error::bad_target, 1024);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, Status::bad_request);
  EXPECT_NE(bad->message.find("malformed HTTP request"), std::string::npos);
  // The client went away: nothing to answer.
  EXPECT_FALSE(readFailure(bhttp::error::end_of_stream, 1024));
  EXPECT_FALSE(readFailure(bhttp::error::partial_message, 1024));
  EXPECT_FALSE(readFailure(boost::asio::error::connection_reset, 1024));
}

TEST(HttpRequest, LimitsApplyToTheParser) {
  RequestReader big_head(100, 1024);
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
  EXPECT_EQ(parseHead(big_head, head), bhttp::error::header_limit);
  RequestReader big_body(1024, 1024);
  EXPECT_EQ(parseHead(big_body, "POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n"),
            bhttp::error::body_limit);
  // A head of exactly the limit passes, one byte more does not, however it arrives.
  const std::string exact = "GET / HTTP/1.1\r\nX: " + std::string(100 - 23, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 100u);
  for (std::size_t step : {1, 7, 1000}) {
    EXPECT_FALSE(readRequest(exact, step, 100).ec) << step;
    EXPECT_EQ(readRequest("GET / HTTP/1.1\r\nX: a" + exact.substr(19), step, 100).ec,
              bhttp::error::header_limit)
        << step;
  }
  // A chunked body is held to the limit decoded.
  EXPECT_EQ(readRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "400\r\n" +
                            std::string(1024, 'a') + "\r\n1\r\nb\r\n0\r\n\r\n",
                        1000)
                .ec,
            bhttp::error::body_limit);
}

TEST(HttpRequest, ReadsRequestsTheSameHoweverTheirBytesArrive) {
  struct Case {
    std::string bytes;
    std::string method, target, body, rest;
    bool keep_alive = true;
  } cases[] = {
      {"GET /v1/models HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/v1/models", "", ""},
      // Empty lines before the request line are skipped (RFC 9112 §2.2).
      {"\r\n\r\nGET / HTTP/1.1\r\n\r\n", "GET", "/", "", ""},
      {"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n", "POST", "/x",
       "hello", "GET / HTTP/1.1\r\n"},
      // The same length given twice is one length.
      {"POST /x HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab", "POST", "/x", "ab",
       ""},
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nTrailer: t\r\n\r\nX",
       "POST", "/x", "hello, world!!!", "X"},
      // Leading zeros in chunk sizes add nothing, however many.
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "00000000000000000002\r\nhi\r\n0000\r\n\r\n",
       "POST", "/x", "hi", ""},
      {"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", "GET", "/", "", "", false},
      {"GET / HTTP/1.0\r\n\r\n", "GET", "/", "", "", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", "", "", true},
      {"PURGE /c HTTP/1.1\r\nX: \t spaced value\t\r\n\r\n", "PURGE", "/c", "", ""},
  };
  for (const auto& c : cases) {
    for (std::size_t step : {1, 2, 5, 4096}) {
      SCOPED_TRACE(c.bytes + " in steps of " + std::to_string(step));
      const auto r = readRequest(c.bytes, step);
      ASSERT_FALSE(r.ec) << r.ec.message();
      EXPECT_EQ(r.req.method_string(), c.method);
      EXPECT_EQ(r.req.target(), c.target);
      EXPECT_EQ(r.req.body(), c.body);
      EXPECT_EQ(r.req.keep_alive(), c.keep_alive);
      EXPECT_EQ(r.rest, c.rest);
    }
  }
  const auto r = readRequest("PURGE /c HTTP/1.1\r\nX: \t spaced value\t\r\nx: 2\r\n\r\n", 3);
  EXPECT_EQ(r.req.method(), bhttp::verb::purge);
  EXPECT_EQ(r.req["x"], "spaced value");  // the first of the name, without its blanks
  EXPECT_EQ(r.req.count("X"), 2u);
  EXPECT_EQ(r.req["missing"], "");
}

TEST(HttpRequest, MalformedRequestsAreRefusedAtTheFirstFault) {
  struct Case {
    std::string bytes;
    bhttp::error error;
  } cases[] = {
      {"GET / HTTP/1.1\n\n", bhttp::error::bad_line_ending},
      {"GET / HTTP/1.1\r\nX: a\n\r\n", bhttp::error::bad_line_ending},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", bhttp::error::bad_field},
      {"G(T / HTTP/1.1\r\n\r\n", bhttp::error::bad_method},
      {" GET / HTTP/1.1\r\n\r\n", bhttp::error::bad_method},
      {"GET  / HTTP/1.1\r\n\r\n", bhttp::error::bad_target},
      {"GET /\x7f HTTP/1.1\r\n\r\n", bhttp::error::bad_target},
      {"GET / HTTP/2.0\r\n\r\n", bhttp::error::bad_version},
      {"GET / HTTP/1.1 \r\n\r\n", bhttp::error::bad_version},
      {"GET / HTTP/1.1\r\nX : a\r\n\r\n", bhttp::error::bad_field},
      {"GET / HTTP/1.1\r\n: a\r\n\r\n", bhttp::error::bad_field},
      {"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", bhttp::error::bad_field},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", bhttp::error::bad_obs_fold},
      {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", bhttp::error::bad_content_length},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       bhttp::error::bad_content_length},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
       bhttp::error::bad_content_length},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n", bhttp::error::bad_chunk},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n",
       bhttp::error::bad_chunk_extension},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", bhttp::error::bad_chunk},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
       bhttp::error::bad_chunk},
      // RFC 9112 §3.2: one Host at most.
      {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", bhttp::error::bad_field},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
       bhttp::error::bad_field},
      // Cut short: the connection just ends.
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", bhttp::error::partial_message},
      {"GET / HTTP/1.1\r\n", bhttp::error::partial_message},
      {"\r\n", bhttp::error::end_of_stream},
      {"", bhttp::error::end_of_stream},
  };
  for (const auto& c : cases) {
    for (std::size_t step : {1, 3, 4096}) {
      SCOPED_TRACE(c.bytes + " in steps of " + std::to_string(step));
      EXPECT_EQ(readRequest(c.bytes, step).ec, c.error);
    }
  }
}

TEST(HttpRequest, SetAndTargetReplaceWhatTheHeadSaid) {
  auto r = readRequest("GET /a HTTP/1.1\r\nHost: one\r\nX: y\r\n\r\n", 4096);
  ASSERT_FALSE(r.ec);
  r.req.set("HOST", "three");
  r.req.target("/b");
  EXPECT_EQ(r.req[bhttp::field::host], "three");
  EXPECT_EQ(r.req.count("host"), 1u);
  EXPECT_EQ(r.req.target(), "/b");
  EXPECT_EQ(r.req["x"], "y");
  EXPECT_EQ(r.req.method_string(), "GET");
  // A value read from the head itself stays whole while the head grows.
  r.req.set("x-copy", r.req["x"]);
  r.req.target(r.req.target());
  EXPECT_EQ(r.req["x-copy"], "y");
  EXPECT_EQ(r.req.target(), "/b");
}

}  // namespace
}  // namespace tidegate::http

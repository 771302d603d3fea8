// How the server reads a request, without a socket: the parser with its limits, the checks of a
// request's head, and the answers to failed reads (the socket-level behaviour is in
// http_server_test.cc).
#include "common/http_request.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <string>

namespace tidegate::http {
namespace {

namespace bhttp = beast::http;

// Parses the head in `text` with the server's limits; the error of the parse, if any.
beast::error_code parseHead(RequestParser& parser, std::string_view text,
                            std::size_t max_header = 1024, std::size_t max_body = 1024) {
  limitParser(parser, max_header, max_body);
  parser.eager(false);
  beast::error_code ec;
  parser.put(boost::asio::buffer(text.data(), text.size()), ec);
  return ec;
}

TEST(HttpRequest, HeadsWithFaultyFramingAreRefused) {
  struct Case {
    const char* head;
    const char* refusal;  // "" when the body may be read
  } cases[] = {
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: ,Chunked\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n", ""},
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "only chunked"},
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\xff\r\n\r\n", "malformed Transfer-Encoding"},
      // A transfer parameter: chunked has none, and a proxy in front would not read it as chunked.
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", "malformed Transfer-Encoding"},
      {"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
      {"GET * HTTP/1.1\r\n\r\n", "OPTIONS"},
      {"GET v1/models HTTP/1.1\r\n\r\n", "neither origin-form nor absolute-form"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.head);
    RequestParser parser;
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
  RequestParser parser;
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
  RequestParser big_head;
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
  EXPECT_EQ(parseHead(big_head, head, 100), bhttp::error::header_limit);
  RequestParser big_body;
  EXPECT_EQ(parseHead(big_body, "POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n"),
            bhttp::error::body_limit);
}

}  // namespace
}  // namespace tidegate::http

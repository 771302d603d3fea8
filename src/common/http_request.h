#pragma once
// How the HTTP server reads one request, apart from the socket: Boost.Beast's request parser
// with the server's limits, the checks of a request's head before its body is read, and the
// answer to a failed read. Server::session (http_server.h) reads each request with these; unit
// tests and the fuzz target (fuzz/http_request_fuzz.cc) drive the same functions from a byte
// buffer. Pure functions; any thread.
//
// A session, for each request:
//   RequestParser parser;  limitParser(parser, header_limit, body_limit);
//   read the head  -> then checkHead(parser.get()) may refuse it (400);
//   read the body  -> a failed read: readFailure(ec, body_limit) says how to answer.
// Every refusal is answered and the connection closes after it.
//
// Framing (RFC 9112): a request whose Transfer-Encoding is anything but exactly `chunked`, that
// has both Transfer-Encoding and Content-Length, or that is HTTP/1.0 with Transfer-Encoding is
// refused (a request smuggling guard). An absolute-form target (`POST http://host/v1/x HTTP/1.1`)
// is brought to origin-form (`/v1/x`) with the Host header set to the URI's authority; the
// asterisk-form (`*`) is accepted for OPTIONS only.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace tidegate::http {

namespace beast = boost::beast;
using Status = beast::http::status;
using Request = beast::http::request<beast::http::string_body>;
using RequestParser = beast::http::request_parser<beast::http::string_body>;

// An early answer: the status and message of an OpenAI-format error; the connection closes
// after it.
struct Refusal {
  Status status;
  std::string message;
};

// Applies the header and body limits to a fresh parser (bytes of the head; bytes of the body).
void limitParser(RequestParser& parser, std::size_t max_header_bytes, std::size_t max_body_bytes);

// Checks a request whose head has been read, before its body is (the framing decides where the
// body ends): the framing rules above, then the target brought to origin-form, in place.
// Returns a 400 refusal, or nullopt when the body may be read and the request handled.
std::optional<Refusal> checkHead(Request& req);

// How to answer a failed read of a request: 413 (the body limit), 431 (the header limit), 400 (a
// malformed request), or nullopt when the connection just closes (the end of the stream, a
// message cut short, a timeout, a reset).
std::optional<Refusal> readFailure(const beast::error_code& ec, std::size_t max_body_bytes);

}  // namespace tidegate::http

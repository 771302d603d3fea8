#pragma once
// HTTP/1.1 message framing (RFC 9112), shared by the server's request reader (RequestReader,
// http_request.h) and the client's response parser (ResponseParser, http_response.h): finding where
// a head ends, reading its field lines, and reading a body — sized, chunked or to the close — in
// pieces handed out without a copy. Errors are Beast's http::error codes, which the server and
// the client already answer and describe. Pure; any thread.
//
// Why not Beast's parser: with its header map (a node allocated and a table lookup for every
// field) it was about a seventh of a proxied request's instructions, for a request and a
// response whose handlers read three fields each.
//
// The grammar, strictly: lines end with CRLF only (a bare LF is refused at once); a field line is
// `token ":" OWS value OWS`, its value visible bytes, obs-text, SP and HTAB; a line folded onto
// the one before it (obs-fold) is refused. A head, from its first line to its blank line, is at
// most a limit (header_limit); empty lines before it are skipped (§2.2). A chunked body's
// extensions and trailer fields are checked and dropped.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tidegate::http::parse {

namespace beast = boost::beast;

// Finds the end of a message's head in the bytes read so far, a line at a time: every LF must
// end a CRLF, and the head ends at its first empty line. Only the limit's first bytes are
// searched, so a head is read the same however its bytes arrive.
class HeadScanner {
 public:
  explicit HeadScanner(std::size_t max_bytes) : max_(max_bytes) {}
  // Looks for the head's end in `in`: the unconsumed bytes, the head's start first. Returns the
  // bytes to consume — the empty lines skipped before the head, or the head through its blank
  // line, which `head` is then set to. `ec`: need_more, header_limit or bad_line_ending.
  std::size_t find(std::string_view in, std::string_view& head, beast::error_code& ec);
  // A byte of the head (not an empty line before it) arrived.
  bool gotSome() const { return got_some_; }
  // The head's lines (its blank line among them) once found.
  std::size_t lines() const { return lines_; }

 private:
  std::size_t max_;
  std::size_t scanned_ = 0;  // bytes of the head searched so far
  std::size_t skipped_ = 0;  // empty lines' bytes before it
  std::size_t lines_ = 0;
  bool got_some_ = false;
};

inline bool isOws(char c) { return c == ' ' || c == '\t'; }
inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}
// The fields that frame a message or its connection, by name (case-insensitive).
enum class Field {
  kOther,
  kContentLength,
  kContentType,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kHost
};
Field classify(std::string_view name);
// RFC 9110 §5.6.2: a non-empty run of tchar.
bool isToken(std::string_view s);
// RFC 9110 §5.5: visible bytes, obs-text, SP and HTAB only (a field value, a reason phrase).
bool isFieldValue(std::string_view s);
// Whether a head's field section (its field lines with their CRLFs, every LF after a CR, as
// HeadScanner found them) holds only what field lines may.
bool validFieldSection(std::string_view s);
// Splits a field line (without its CRLF) into its name and value, or false. The value's bytes
// are checked only when `check_value` (a head's were, by validFieldSection).
bool splitField(std::string_view line, std::string_view& name, std::string_view& value,
                bool check_value);
// A Content-Length value: 1*DIGIT, without overflow.
std::optional<std::uint64_t> parseLength(std::string_view v);
// Whether a Connection header's tokens list `close` or `keep-alive` (set, never cleared).
void connectionTokens(std::string_view v, bool& close, bool& keep_alive);
// Whether a connection may carry another message after this one (RFC 9112 §9.3): HTTP/1.1
// unless `close` was listed, HTTP/1.0 only with `keep-alive`.
inline bool keepAlive(unsigned version, bool close, bool keep_alive) {
  return version >= 11 ? !close : keep_alive && !close;
}
// A response of this status has no body whatever its head says (1xx, 204, 304).
inline bool bodiless(unsigned status) { return status < 200 || status == 204 || status == 304; }
// The last non-empty element of a comma-separated list, without its blanks ("" if none): empty
// elements are ignored (RFC 9110 §5.6.1).
std::string_view lastListElement(std::string_view v);

// Calls `f(name, value)` for each field line of a field section (each line with its CRLF);
// bad_field or bad_obs_fold if a line is not one.
template <class F>
beast::error_code forEachField(std::string_view section, F&& f) {
  if (!validFieldSection(section)) return beast::http::error::bad_field;
  while (!section.empty()) {
    const auto end = section.find("\r\n");
    const auto line = section.substr(0, end);
    if (line.empty()) return beast::http::error::bad_field;
    if (isOws(line.front())) return beast::http::error::bad_obs_fold;  // folded onto the last
    std::string_view name, value;
    if (!splitField(line, name, value, false)) return beast::http::error::bad_field;
    f(name, value);
    section.remove_prefix(end + 2);
  }
  return {};
}

// Reads a message's body from the bytes after its head.
class BodyReader {
 public:
  enum class Framing { kNone, kSized, kChunked, kToEof };
  // `max_body`: the most decoded body bytes of a chunked body (body_limit past it; a sized
  // body's length is the caller's to check); `max_trailer`: the most bytes of its trailer fields
  // (header_limit past it).
  BodyReader(std::size_t max_body, std::size_t max_trailer)
      : max_body_(max_body), max_trailer_(max_trailer) {}
  void start(Framing framing, std::uint64_t length = 0);
  // Reads what it can of `in` up to one piece of body, which `piece` is set to (a view into `in`,
  // empty if none); returns the bytes consumed. `ec` is need_more when the body is not complete
  // and `in` holds nothing more of it.
  std::size_t put(std::string_view in, std::string_view& piece, beast::error_code& ec);
  // The connection ended: the end of a body that runs to the close, else a cut message.
  void eof(beast::error_code& ec);
  bool done() const { return state_ == State::kDone; }
  bool chunked() const { return chunked_; }
  std::size_t maxBody() const { return max_body_; }
  // The bytes of a sized body still to come.
  std::optional<std::uint64_t> remaining() const {
    if (state_ != State::kSized) return std::nullopt;
    return remaining_;
  }

 private:
  enum class State { kSized, kToEof, kChunkSize, kChunkData, kChunkEnd, kTrailer, kDone };
  void putChunkLine(std::string_view line, beast::error_code& ec);

  std::size_t max_body_, max_trailer_;
  State state_ = State::kDone;
  std::uint64_t remaining_ = 0;   // of the sized body, or of the current chunk
  std::uint64_t decoded_ = 0;     // a chunked body's bytes so far
  std::size_t trailer_ = 0;       // bytes of trailer fields so far
  std::size_t line_scanned_ = 0;  // bytes of the unfinished line searched so far
  bool chunked_ = false;
};

// What the request reader (http_request.h) and the response parser (http_response.h) share: a
// head, found by a HeadScanner and read by the derived class, then a body read by a BodyReader.
// The interface is the part of Beast's basic_parser that readMessage (http_wire.h) uses.
class MessageReader {
 public:
  // The connection ended: end_of_stream before a byte of a message, the end of a body that runs
  // to the close, else partial_message.
  void put_eof(beast::error_code& ec);
  bool got_some() const { return head_.gotSome(); }
  bool is_header_done() const { return header_done_; }
  bool is_done() const { return header_done_ && body_.done(); }
  bool chunked() const { return body_.chunked(); }
  std::optional<std::uint64_t> content_length() const { return content_length_; }
  // The body bytes still to come, when the body has a Content-Length.
  std::optional<std::uint64_t> content_length_remaining() const { return body_.remaining(); }

 protected:
  MessageReader(std::size_t max_head, std::size_t max_body)
      : head_(max_head), body_(max_body, max_head) {}
  // Looks for the head's end in `in` and, once it is there, has `read(head)` read it (its error
  // goes to `ec`). Returns the bytes consumed: at most the head, which the caller reads before
  // the body.
  template <class Read>
  std::size_t putHead(std::string_view in, beast::error_code& ec, Read&& read) {
    std::string_view head;
    const std::size_t used = head_.find(in, head, ec);
    if (head.empty()) return used;
    ec = read(head);
    header_done_ = !ec;  // a head refused leaves nothing to read after it
    return used;
  }
  // Takes a Content-Length field's value; `bad` set when it is not a length, or another than
  // an earlier one's (§6.3).
  void takeLength(std::string_view value, bool& bad);

  HeadScanner head_;
  BodyReader body_;
  std::optional<std::uint64_t> content_length_;
  bool header_done_ = false;
};

}  // namespace tidegate::http::parse

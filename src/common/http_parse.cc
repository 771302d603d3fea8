#include "common/http_parse.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <cstring>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tidegate::http::parse {

namespace bhttp = beast::http;

namespace {

// RFC 9110 §5.6.2's tchar: the bytes of a token (a method, a field name).
constexpr bool isTokenByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
// A field value's bytes (RFC 9110 §5.5): visible, obs-text, SP and HTAB.
constexpr bool isValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

struct ByteTable {
  bool token[256] = {}, value[256] = {};
  constexpr ByteTable() {
    for (int c = 0; c < 256; ++c) {
      const auto u = static_cast<unsigned char>(c);
      token[c] = isTokenByte(u);
      value[c] = isValueByte(u);
    }
  }
};
constexpr ByteTable kBytes;

// The longest chunk-size line (the size and its extensions) read; longer is bad_chunk.
constexpr std::size_t kMaxChunkLine = 4096;

}  // namespace

Field classify(std::string_view name) {
  // By length first: most fields are none of these, and the length tells them apart cheaply.
  switch (name.size()) {
    case 10:
      if (beast::iequals(name, "connection")) return Field::kConnection;
      if (beast::iequals(name, "keep-alive")) return Field::kKeepAlive;
      return Field::kOther;
    case 4:
      return beast::iequals(name, "host") ? Field::kHost : Field::kOther;
    case 12:
      return beast::iequals(name, "content-type") ? Field::kContentType : Field::kOther;
    case 14:
      return beast::iequals(name, "content-length") ? Field::kContentLength : Field::kOther;
    case 17:
      return beast::iequals(name, "transfer-encoding") ? Field::kTransferEncoding : Field::kOther;
    default:
      return Field::kOther;
  }
}

void connectionTokens(std::string_view v, bool& close, bool& keep_alive) {
  while (!v.empty()) {
    const auto comma = std::min(v.find(','), v.size());
    const auto token = trimOws(v.substr(0, comma));
    if (beast::iequals(token, "close")) close = true;
    if (beast::iequals(token, "keep-alive")) keep_alive = true;
    v.remove_prefix(std::min(comma + 1, v.size()));
  }
}

std::optional<std::uint64_t> parseLength(std::string_view v) {
  if (v.empty() || v.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

// A field line is `name ":" OWS value OWS`.
bool splitField(std::string_view line, std::string_view& name, std::string_view& value,
                bool check_value) {
  std::size_t colon = 0;
  while (colon < line.size() && kBytes.token[static_cast<unsigned char>(line[colon])]) ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return false;
  name = line.substr(0, colon);
  value = trimOws(line.substr(colon + 1));
  return !check_value || isFieldValue(value);
}

// Whether a head's field lines (each with its CRLF, every LF after a CR) hold only what field
// lines may: no control byte but HTAB and the CRLFs, no DEL, and a CR only right before an LF.
// Sixteen bytes a step with SSE2: a byte at a time, checking the values was a third of reading a
// request.
bool validFieldSection(std::string_view s) {
  std::size_t i = 0;
  unsigned bad = 0;
  unsigned after_cr = 0;  // 1 when the byte before the next one is a CR
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), tab = _mm_set1_epi8('\t'), cr = _mm_set1_epi8('\r'),
                lf = _mm_set1_epi8('\n'), del = _mm_set1_epi8(0x7f);
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i is_cr = _mm_cmpeq_epi8(v, cr), is_lf = _mm_cmpeq_epi8(v, lf);
    // Unsigned v >= 0x20 exactly when max(v, 0x20) == v.
    const __m128i ok = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, space), v), _mm_cmpeq_epi8(v, tab)),
        _mm_or_si128(is_cr, is_lf));
    const auto crs = static_cast<unsigned>(_mm_movemask_epi8(is_cr));
    const auto lfs = static_cast<unsigned>(_mm_movemask_epi8(is_lf));
    bad |= (~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffff) |
           static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, del))) |
           ((((crs << 1) | after_cr) & 0xffff) ^ lfs);  // an LF exactly after each CR
    after_cr = crs >> 15;
  }
#endif
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool is_lf = c == '\n';
    bad |= static_cast<unsigned>(!(kBytes.value[c] || c == '\r' || is_lf) ||
                                 (is_lf != (after_cr != 0)));
    after_cr = c == '\r';
  }
  return bad == 0 && after_cr == 0;
}

std::string_view lastListElement(std::string_view v) {
  while (!v.empty()) {
    const auto comma = v.rfind(',');
    const auto last = trimOws(comma == std::string_view::npos ? v : v.substr(comma + 1));
    if (!last.empty() || comma == std::string_view::npos) return last;
    v = v.substr(0, comma);
  }
  return {};
}

bool isFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return kBytes.value[static_cast<unsigned char>(c)]; });
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kBytes.token[static_cast<unsigned char>(c)]) return false;
  return true;
}

std::size_t HeadScanner::find(std::string_view in, std::string_view& head, beast::error_code& ec) {
  ec = {};
  head = {};
  std::size_t used = 0;
  if (!got_some_) {
    // Empty lines before the head (§2.2): skipped, and bounded like a head.
    while (in.size() - used >= 2 && in[used] == '\r' && in[used + 1] == '\n') used += 2;
    skipped_ += used;
    if (skipped_ > max_) {
      ec = bhttp::error::header_limit;
      return used;
    }
    in.remove_prefix(used);
    if (in.empty() || (in.size() == 1 && in[0] == '\r')) {
      ec = bhttp::error::need_more;
      return used;
    }
    got_some_ = true;
  }
  const std::size_t limit = std::min(in.size(), max_);
  while (scanned_ < limit) {
    const void* lf = std::memchr(in.data() + scanned_, '\n', limit - scanned_);
    if (!lf) {
      scanned_ = limit;
      break;
    }
    const auto at = static_cast<std::size_t>(static_cast<const char*>(lf) - in.data());
    scanned_ = at + 1;
    ++lines_;
    if (at == 0 || in[at - 1] != '\r') {
      ec = bhttp::error::bad_line_ending;
      return used;
    }
    if (at >= 3 && in[at - 2] == '\n') {  // "\r\n\r\n": the blank line that ends the head
      head = in.substr(0, at + 1);
      return used + at + 1;
    }
  }
  ec = in.size() >= max_ ? bhttp::error::header_limit : bhttp::error::need_more;
  return used;
}

void BodyReader::start(Framing framing, std::uint64_t length) {
  chunked_ = framing == Framing::kChunked;
  remaining_ = length;
  decoded_ = 0;
  trailer_ = 0;
  line_scanned_ = 0;
  switch (framing) {
    case Framing::kNone:
      state_ = State::kDone;
      break;
    case Framing::kSized:
      state_ = length > 0 ? State::kSized : State::kDone;
      break;
    case Framing::kChunked:
      state_ = State::kChunkSize;
      break;
    case Framing::kToEof:
      state_ = State::kToEof;
      break;
  }
}

void BodyReader::eof(beast::error_code& ec) {
  if (state_ == State::kToEof) state_ = State::kDone;
  ec = state_ == State::kDone ? beast::error_code() : bhttp::error::partial_message;
}

std::size_t BodyReader::put(std::string_view in, std::string_view& piece, beast::error_code& ec) {
  ec = {};
  piece = {};
  std::size_t used = 0;
  while (state_ != State::kDone) {
    const std::string_view rest = in.substr(used);
    if (state_ == State::kSized || state_ == State::kChunkData || state_ == State::kToEof) {
      if (rest.empty()) break;
      const auto n =
          state_ == State::kToEof
              ? rest.size()
              : static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
      piece = rest.substr(0, n);
      if (state_ != State::kToEof) remaining_ -= n;
      if (remaining_ == 0 && state_ == State::kSized) state_ = State::kDone;
      if (remaining_ == 0 && state_ == State::kChunkData) state_ = State::kChunkEnd;
      return used + n;  // one piece a call
    }
    // The other states read whole lines, searched from where the last call stopped (less the
    // CR that may have ended it), so a line trickling in a byte a read is searched once.
    const auto end = rest.find("\r\n", line_scanned_ > 0 ? line_scanned_ - 1 : 0);
    const bool trailer = state_ == State::kTrailer;
    const std::size_t bound = !trailer                  ? kMaxChunkLine
                              : trailer_ < max_trailer_ ? max_trailer_ - trailer_
                                                        : 0;
    const auto too_long = trailer ? bhttp::error::header_limit : bhttp::error::bad_chunk;
    if (end == std::string_view::npos) {
      // Not yet a line: too long already only past its bound and the CR that may end it.
      if (rest.size() > bound + 1) ec = too_long;
      line_scanned_ = rest.size();
      break;
    }
    line_scanned_ = 0;
    if (end > bound) {
      ec = too_long;
      return used;
    }
    used += end + 2;
    ec = {};
    putChunkLine(rest.substr(0, end), ec);
    if (ec) return used;
  }
  if (!ec && state_ != State::kDone) ec = bhttp::error::need_more;
  return used;
}

// A line of a chunked body (§7.1): a chunk's size and extensions, the CRLF after its data, or a
// trailer field; `ec` set if it is none of these.
void BodyReader::putChunkLine(std::string_view line, beast::error_code& ec) {
  if (state_ == State::kChunkEnd) {
    if (!line.empty()) ec = bhttp::error::bad_chunk;
    state_ = State::kChunkSize;
  } else if (state_ == State::kTrailer) {
    std::string_view name, value;
    if (line.empty()) {
      state_ = State::kDone;
    } else if (isOws(line.front()) || !splitField(line, name, value, true)) {
      ec = bhttp::error::bad_field;
    } else {
      trailer_ += line.size() + 2;
    }
  } else {  // kChunkSize
    std::size_t k = 0;
    std::uint64_t size = 0;
    std::size_t zeros = 0;  // leading zeros are allowed and add nothing
    while (zeros < line.size() && line[zeros] == '0') ++zeros;
    for (k = zeros; k < line.size() && std::isxdigit(static_cast<unsigned char>(line[k])); ++k) {
      if (k - zeros == 15) {  // 16 significant hex digits would overflow what a body may be
        ec = bhttp::error::bad_chunk;
        return;
      }
      const char c = line[k];
      size = size * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    // Extensions: `;name[=value]`, after optional blanks; dropped, but only visible bytes.
    const auto ext = trimOws(line.substr(k));
    const bool ext_ok = (ext.empty() || ext.front() == ';') && isFieldValue(ext);
    if (k == 0) {  // no digit at all
      ec = bhttp::error::bad_chunk;
    } else if (!ext_ok) {
      ec = bhttp::error::bad_chunk_extension;
    } else if (size > max_body_ - decoded_) {
      ec = bhttp::error::body_limit;
    } else {
      decoded_ += size;
      remaining_ = size;
      state_ = size == 0 ? State::kTrailer : State::kChunkData;
    }
  }
}

void MessageReader::put_eof(beast::error_code& ec) {
  if (!header_done_) {
    ec = head_.gotSome() ? bhttp::error::partial_message : bhttp::error::end_of_stream;
    return;
  }
  body_.eof(ec);
}

void MessageReader::takeLength(std::string_view value, bool& bad) {
  const auto n = parseLength(value);
  bad = bad || !n || (content_length_ && *content_length_ != *n);
  content_length_ = n;
}

}  // namespace tidegate::http::parse

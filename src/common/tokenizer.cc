#include "common/tokenizer.h"

namespace tidegate::tokenizer {
namespace {

bool isLetter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool isBlank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Length of the UTF-8 sequence starting with lead byte `c` (1 for invalid bytes).
std::size_t utf8Length(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

// Length of the piece body starting at i (after an optional attached space).
std::size_t bodyLength(std::string_view t, std::size_t i) {
  const auto c = static_cast<unsigned char>(t[i]);
  std::size_t j = i + 1;
  if (isLetter(c)) {
    while (j < t.size() && j - i < kMaxLetters && isLetter(static_cast<unsigned char>(t[j]))) ++j;
  } else if (isDigit(c)) {
    while (j < t.size() && j - i < 3 && isDigit(static_cast<unsigned char>(t[j]))) ++j;
  } else if (c >= 0x80) {
    j = i + utf8Length(c);
    if (j > t.size()) j = t.size();
  }
  return j - i;
}

}  // namespace

void split(std::string_view t, std::vector<Piece>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < t.size()) {
    const auto c = static_cast<unsigned char>(t[i]);
    const std::size_t start = i;
    if (c == '\n') {
      ++i;
    } else if (c == ' ' && i + 1 < t.size() && !isBlank(static_cast<unsigned char>(t[i + 1])) &&
               t[i + 1] != '\n') {
      // A single space joins the piece that follows it.
      i = i + 1 + bodyLength(t, i + 1);
    } else if (isBlank(c)) {
      while (i < t.size() && isBlank(static_cast<unsigned char>(t[i]))) {
        // Leave a final single space to attach to the next word.
        if (t[i] == ' ' && i + 1 < t.size() && i > start &&
            !isBlank(static_cast<unsigned char>(t[i + 1])) && t[i + 1] != '\n')
          break;
        ++i;
      }
    } else {
      i += bodyLength(t, i);
    }
    out.push_back({static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(i - start)});
  }
}

std::size_t count(std::string_view text) {
  thread_local std::vector<Piece> pieces;
  split(text, pieces);
  return pieces.size();
}

std::uint32_t tokenId(std::string_view piece) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : piece) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

void encode(std::string_view text, std::vector<std::uint32_t>& ids) {
  thread_local std::vector<Piece> pieces;
  split(text, pieces);
  ids.reserve(ids.size() + pieces.size());
  for (const auto& p : pieces) ids.push_back(tokenId(text.substr(p.offset, p.length)));
}

}  // namespace tidegate::tokenizer

#pragma once
// A deterministic approximation of a BPE tokenizer (Llama/GPT style), shared by the engine
// simulator (prompt lengths, prefix-cache block hashes), the load generator (prompts of N tokens)
// and the gateway (prefix affinity). It needs no vocabulary file and is fast: one pass, no
// allocation beyond the output vector. The rules (docs/engine.md) give about 1.3 tokens per
// English word, close to real tokenizers on prose:
//   - one leading space attaches to the piece that follows it (" hello" is one token);
//   - runs of ASCII letters are split into pieces of at most kMaxLetters characters;
//   - runs of digits are split into pieces of at most 3 digits;
//   - every other ASCII symbol is its own piece; so is every newline and every non-ASCII
//     code point (CJK text is about one token per character);
//   - other whitespace runs (tabs, several spaces) are one piece.
// Thread-safety: pure functions.

#include <cstdint>
#include <string_view>
#include <vector>

namespace tidegate::tokenizer {

inline constexpr std::size_t kMaxLetters = 6;

struct Piece {
  std::uint32_t offset;
  std::uint32_t length;
};

// Splits `text` into pieces; `out` is cleared first.
void split(std::string_view text, std::vector<Piece>& out);

// Number of tokens in `text`.
std::size_t count(std::string_view text);

// A stable 32-bit id for a piece's text (FNV-1a), used for block hashes.
std::uint32_t tokenId(std::string_view piece);

// Appends the ids of `text`'s pieces to `ids`.
void encode(std::string_view text, std::vector<std::uint32_t>& ids);

}  // namespace tidegate::tokenizer

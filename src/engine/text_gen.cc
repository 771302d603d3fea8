#include "engine/text_gen.h"

#include <algorithm>
#include <array>
#include <random>

#include "common/tokenizer.h"

namespace tidegate::engine {
namespace {

// Words of at most 6 letters: " word" is one token under the tokenizer's rules.
constexpr std::array<std::string_view, 64> kWords = {
    "the",   "of",    "and",   "to",    "in",    "is",   "that",  "for",  "it",    "as",   "with",
    "was",   "on",    "be",    "at",    "by",    "this", "had",   "not",  "are",   "but",  "from",
    "or",    "have",  "an",    "they",  "which", "one",  "you",   "were", "her",   "all",  "she",
    "there", "would", "their", "we",    "him",   "been", "has",   "when", "who",   "will", "more",
    "no",    "if",    "out",   "so",    "said",  "what", "up",    "its",  "about", "into", "than",
    "them",  "can",   "only",  "other", "new",   "some", "could", "time", "these"};
constexpr std::uint32_t kEosId = 0xE05E05u;

}  // namespace

GeneratedText generateText(const GenerateSpec& spec) {
  GeneratedText out;
  std::mt19937_64 rng(spec.seed);
  std::vector<std::string> candidates;
  bool natural_end = false;  // the model would emit EOS after `candidates`

  if (spec.mode == TextMode::kEcho) {
    std::vector<tokenizer::Piece> pieces;
    tokenizer::split(spec.echo_source, pieces);
    const std::size_t n = std::min<std::size_t>(pieces.size(), spec.max_tokens);
    for (std::size_t i = 0; i < n; ++i)
      candidates.emplace_back(spec.echo_source.substr(pieces[i].offset, pieces[i].length));
    natural_end = !spec.ignore_eos && pieces.size() < static_cast<std::size_t>(spec.max_tokens);
  } else {
    int length = spec.max_tokens;
    if (spec.eos_mean > 0 && !spec.ignore_eos) {
      // Geometric length (>= 1) with the given mean: the EOS token ends it.
      std::geometric_distribution<int> g(1.0 / std::max(1.0, spec.eos_mean));
      const int natural = 1 + g(rng);
      if (natural < length) {
        length = natural - 1;  // words before the EOS token
        natural_end = true;
      }
    }
    std::uniform_int_distribution<std::size_t> pick(0, kWords.size() - 1);
    for (int i = 0; i < length; ++i) {
      std::string w = i == 0 ? "" : " ";
      w += kWords[pick(rng)];
      // A sentence ends now and then, so the text reads like prose.
      if (i > 0 && i % 12 == 11) w = ".";
      candidates.push_back(std::move(w));
    }
  }

  // Apply stop strings: the token that completes the first match ends the output (it is
  // counted); the text from the match on is withheld, even where earlier tokens held part of it.
  std::string text;
  std::size_t max_stop = 0;
  if (spec.stop)
    for (const auto& s : *spec.stop) max_stop = std::max(max_stop, s.size());
  std::vector<std::size_t> starts;
  for (auto& piece : candidates) {
    const std::size_t before = text.size();
    starts.push_back(before);
    text += piece;
    out.ids.push_back(tokenizer::tokenId(piece));
    out.pieces.push_back(std::move(piece));
    if (max_stop == 0) continue;
    const std::size_t from = before >= max_stop ? before - max_stop + 1 : 0;
    std::size_t match = std::string::npos;
    const std::string* which = nullptr;
    for (const auto& s : *spec.stop) {
      auto pos = text.find(s, from);
      if (pos != std::string::npos && pos < match) {
        match = pos;
        which = &s;
      }
    }
    if (!which) continue;
    for (std::size_t j = 0; j < out.pieces.size(); ++j) {
      if (starts[j] + out.pieces[j].size() > match)
        out.pieces[j].resize(match > starts[j] ? match - starts[j] : 0);
    }
    out.finish_reason = "stop";
    out.stop_reason = *which;
    return out;
  }
  if (natural_end || out.pieces.empty()) {
    out.pieces.emplace_back();  // the EOS token: counted, no text
    out.ids.push_back(kEosId);
    out.finish_reason = "stop";
  } else {
    out.finish_reason = "length";
  }
  return out;
}

}  // namespace tidegate::engine

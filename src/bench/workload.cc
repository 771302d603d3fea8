#include "bench/workload.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

#include "common/json_util.h"

namespace tidegate::bench {
namespace {

// 256 pronounceable words of 3-6 letters, built once from a fixed seed; " word" is one token.
const std::array<std::string, 256>& vocabulary() {
  static const auto words = [] {
    std::array<std::string, 256> w;
    static constexpr char kCons[] = "bcdfghklmnprstvz";
    static constexpr char kVow[] = "aeiou";
    std::mt19937_64 rng(0x7D6A7E);
    for (auto& word : w) {
      const int len = 3 + static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i) word += i % 2 == 0 ? kCons[rng() % 16] : kVow[rng() % 5];
    }
    return w;
  }();
  return words;
}

}  // namespace

Workload::Workload(WorkloadConfig config) : c_(std::move(config)), rng_(c_.seed) {
  c_.rate *= c_.rate_scale;
  for (auto& seg : c_.profile) seg.rate *= c_.rate_scale;
  if (c_.shape == Shape::kTrace && c_.trace) {
    while (row_ < c_.trace->rows.size() && c_.trace->rows[row_].offset_s < c_.start_s) ++row_;
  }
}

namespace {
// Calls word(index) for `tokens` vocabulary indices drawn from `seed`. SplitMix64: seeding is
// free (an mt19937_64 fills 312 words of state per prompt, which was the load generator's
// largest cost) and eight words come out of each draw.
template <class Word>
void drawWords(int tokens, std::uint64_t seed, Word word) {
  std::uint64_t state = seed, bits = 0;
  for (int i = 0; i < tokens; ++i) {
    if (i % 8 == 0) {
      std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      bits = z ^ (z >> 31);
    }
    word(static_cast<std::uint32_t>(bits & 255));
    bits >>= 8;
  }
}
}  // namespace

void Workload::appendWords(std::string& out, int tokens, std::uint64_t seed) {
  const auto& vocab = vocabulary();
  drawWords(tokens, seed, [&](std::uint32_t w) {
    out += ' ';
    out += vocab[w];
  });
}

void Workload::appendTokens(std::vector<std::uint32_t>& out, int tokens, std::uint64_t seed) {
  drawWords(tokens, seed, [&](std::uint32_t w) { out.push_back(w); });
}

int Workload::draw(const Dist& d) {
  if (d.stddev <= 0) return std::max(1, static_cast<int>(std::lround(d.mean)));
  std::normal_distribution<double> n(d.mean, d.stddev);
  return std::max(1, static_cast<int>(std::lround(n(rng_))));
}

std::optional<double> Workload::nextArrival() {
  switch (c_.shape) {
    case Shape::kClosed:
      return -1;
    case Shape::kRate: {
      if (c_.rate <= 0) return std::nullopt;
      if (c_.poisson) {
        t_ += std::exponential_distribution<double>(c_.rate)(rng_);
      } else {
        t_ = static_cast<double>(count_) / c_.rate;  // k/rate: no accumulated rounding
      }
      return t_;
    }
    case Shape::kProfile: {
      // Memoryless arrivals per segment: at a boundary, restart from the next segment's start.
      while (segment_ < c_.profile.size()) {
        const auto& seg = c_.profile[segment_];
        const double end = segment_start_ + seg.duration_s;
        double t;
        if (seg.rate <= 0) {
          t = end;  // a pause: nothing in this segment
        } else if (c_.poisson) {
          t = std::max(t_, segment_start_) + std::exponential_distribution<double>(seg.rate)(rng_);
        } else {
          t = segment_start_ + static_cast<double>(in_segment_) / seg.rate;
        }
        if (t < end) {
          t_ = t;
          ++in_segment_;
          return t;
        }
        segment_start_ = end;
        t_ = end;
        in_segment_ = 0;
        ++segment_;
      }
      return std::nullopt;
    }
    case Shape::kTrace: {
      if (!c_.trace) return std::nullopt;
      const auto& rows = c_.trace->rows;
      if (c_.rate_scale == 1) {
        if (row_ >= rows.size()) return std::nullopt;
        return (rows[row_].offset_s - c_.start_s) / c_.time_scale;
      }
      // Scaled: the current row's copies, drawn when the row is reached (row_ then points past
      // it; next() reads rows[row_ - 1]).
      while (copies_.empty()) {
        if (row_ >= rows.size()) return std::nullopt;
        const double whole = std::floor(c_.rate_scale);
        int k = static_cast<int>(whole);
        if (std::uniform_real_distribution<double>(0, 1)(rng_) < c_.rate_scale - whole) ++k;
        const double at = rows[row_].offset_s;
        const double gap = row_ + 1 < rows.size() ? rows[row_ + 1].offset_s - at : 0;
        for (int i = 0; i < k; ++i)
          copies_.push_back(i == 0 ? at
                                   : at + gap * std::uniform_real_distribution<double>(0, 1)(rng_));
        std::sort(copies_.begin(), copies_.end(), std::greater<>());  // next one at the back
        ++row_;
      }
      return (copies_.back() - c_.start_s) / c_.time_scale;
    }
  }
  return std::nullopt;
}

std::optional<Planned> Workload::next() {
  if (c_.max_requests && count_ >= *c_.max_requests) return std::nullopt;
  auto at = nextArrival();
  if (!at) return std::nullopt;
  if (c_.duration_s > 0 && *at >= c_.duration_s) return std::nullopt;
  Planned p;
  p.index = count_;
  p.at = *at;
  const TraceRow* row = nullptr;
  if (c_.shape == Shape::kTrace) {
    if (c_.rate_scale == 1) {
      row = &c_.trace->rows[row_++];
    } else {
      row = &c_.trace->rows[row_ - 1];
      copies_.pop_back();
    }
    p.prompt_tokens = std::max(1, row->input_tokens);
    p.max_tokens = std::max(1, row->output_tokens);
  } else {
    p.prompt_tokens = draw(c_.prompt_tokens);
    p.max_tokens = draw(c_.max_tokens);
  }
  if (c_.output == WorkloadConfig::Output::kBody) {
    p.body = body(p, row);
  } else {
    p.tokens.reserve(static_cast<std::size_t>(p.prompt_tokens));
    promptRuns(p, row, [&](int n, std::uint64_t seed) { appendTokens(p.tokens, n, seed); });
  }
  ++count_;
  return p;
}

template <class Add>
void Workload::promptRuns(const Planned& p, const TraceRow* row, Add add) {
  if (row && !row->hash_ids.empty() && c_.trace->block_tokens > 0) {
    const int block = c_.trace->block_tokens;
    int left = p.prompt_tokens;
    for (auto id : row->hash_ids) {
      if (left <= 0) break;
      const int n = std::min(left, block);
      // The block's words depend on its id only; a shorter last block is a prefix of the same.
      add(n, id * 0x9E3779B97F4A7C15ull + 1);
      left -= n;
    }
    if (left > 0) add(left, rng_());
  } else {
    add(p.prompt_tokens, rng_());
  }
}

std::string Workload::body(const Planned& p, const TraceRow* row) {
  std::string text;
  text.reserve(static_cast<std::size_t>(p.prompt_tokens) * 6);
  promptRuns(p, row, [&](int n, std::uint64_t seed) { appendWords(text, n, seed); });
  std::string b = "{\"model\":";
  json::appendQuoted(b, c_.model);
  if (c_.chat) {
    b += ",\"messages\":[{\"role\":\"user\",\"content\":";
    json::appendQuoted(b, text);
    b += "}]";
  } else {
    b += ",\"prompt\":";
    json::appendQuoted(b, text);
  }
  b += ",\"max_tokens\":" + std::to_string(p.max_tokens);
  if (c_.ignore_eos) b += ",\"ignore_eos\":true";
  if (c_.stream) b += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  b += '}';
  return b;
}

}  // namespace tidegate::bench

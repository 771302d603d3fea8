#include "common/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace tidegate::prom {

namespace {
// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
std::size_t utf8Sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = c >= 0xC2 && c <= 0xDF   ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
  if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
  if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
  return n;
}

// Label values escape backslash, double quote and newline; HELP text the same but the quote.
// Invalid UTF-8 becomes U+FFFD: the exposition format is UTF-8, and one bad byte in a label
// would make every scraper reject the whole page.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size();) {
    const std::size_t n = utf8Sequence(v, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(v.substr(i, n));
      i += n;
      continue;
    }
    const char c = v[i++];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string escapeLabelValue(std::string_view v) { return escape(v, true); }
std::string escapeHelp(std::string_view v) { return escape(v, false); }

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, p);
  }
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void TextWriter::labels(const Labels& labels, std::string_view extra_name,
                        std::string_view extra_value) {
  if (labels.empty() && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    out_ += escapeLabelValue(v);
    out_ += '"';
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_ += '}';
}

void TextWriter::sample(std::string_view name, const Labels& l, double value) {
  sample(name, l, {}, {}, value);
}

void TextWriter::sample(std::string_view name, const Labels& l, std::string_view extra_name,
                        std::string_view extra_value, double value) {
  out_ += name;
  labels(l, extra_name, extra_value);
  out_ += ' ';
  out_ += formatValue(value);
  out_ += '\n';
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double v) {
  // Buckets are "less or equal" upper bounds.
  auto idx = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                      bounds_.begin());
  buckets_[idx].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double histogramQuantile(double q, std::span<const double> bounds,
                         std::span<const std::uint64_t> cumulative) {
  if (cumulative.size() != bounds.size() + 1 || cumulative.back() == 0) return std::nan("");
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(cumulative.back());
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(cumulative[i]) < rank) continue;
    const double lo = i == 0 ? 0 : bounds[i - 1];
    const double below = i == 0 ? 0 : static_cast<double>(cumulative[i - 1]);
    const double in_bucket = static_cast<double>(cumulative[i]) - below;
    if (in_bucket <= 0) return lo;
    return lo + (bounds[i] - lo) * (rank - below) / in_bucket;
  }
  return bounds.empty() ? std::nan("") : bounds.back();
}

CountersByStatus::CountersByStatus(Family<Counter>& family, std::vector<std::string> labels)
    : family_(family), labels_(std::move(labels)) {}

Counter& CountersByStatus::at(int status) {
  if (status < kMin || status > kMax) status = 500;
  auto& slot = slots_[static_cast<std::size_t>(status - kMin)];
  if (auto* c = slot.load(std::memory_order_acquire)) return *c;
  // First use of this status: one lookup under the family's lock.
  auto values = labels_;
  values.push_back(std::to_string(status));
  auto* c = &family_.with(values);
  slot.store(c, std::memory_order_release);
  return *c;
}

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  for (auto& f : counters_)
    if (f.name() == name) return f;
  auto& f = counters_.emplace_back(std::move(name), std::move(help), std::move(labels),
                                   [] { return std::make_unique<Counter>(); });
  order_.push_back({Entry::kCounter, &f});
  return f;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  for (auto& f : gauges_)
    if (f.name() == name) return f;
  auto& f = gauges_.emplace_back(std::move(name), std::move(help), std::move(labels),
                                 [] { return std::make_unique<Gauge>(); });
  order_.push_back({Entry::kGauge, &f});
  return f;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> labels,
                                       std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  for (auto& f : histograms_)
    if (f.name() == name) return f;
  auto& f = histograms_.emplace_back(std::move(name), std::move(help), std::move(labels),
                                     [bounds] { return std::make_unique<Histogram>(bounds); });
  order_.push_back({Entry::kHistogram, &f});
  return f;
}

void Registry::addCollector(std::function<void(TextWriter&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  TextWriter w;
  for (const auto& e : order_) {
    switch (e.kind) {
      case Entry::kCounter: {
        auto& f = *static_cast<Family<Counter>*>(e.family);
        w.family(f.name(), "counter", f.help());
        f.forEach([&](const Labels& l, const Counter& c) { w.sample(f.name(), l, c.value()); });
        break;
      }
      case Entry::kGauge: {
        auto& f = *static_cast<Family<Gauge>*>(e.family);
        w.family(f.name(), "gauge", f.help());
        f.forEach([&](const Labels& l, const Gauge& g) { w.sample(f.name(), l, g.value()); });
        break;
      }
      case Entry::kHistogram: {
        auto& f = *static_cast<Family<Histogram>*>(e.family);
        w.family(f.name(), "histogram", f.help());
        const std::string bucket = f.name() + "_bucket";
        f.forEach([&](const Labels& l, const Histogram& h) {
          auto cum = h.cumulative();
          for (std::size_t i = 0; i < h.bounds().size(); ++i)
            w.sample(bucket, l, "le", formatValue(h.bounds()[i]), static_cast<double>(cum[i]));
          w.sample(bucket, l, "le", "+Inf", static_cast<double>(cum.back()));
          w.sample(f.name() + "_sum", l, h.sum());
          // _count from the same snapshot as the +Inf bucket, so the two always agree.
          w.sample(f.name() + "_count", l, static_cast<double>(cum.back()));
        });
        break;
      }
    }
  }
  for (const auto& c : collectors_) c(w);
  return w.take();
}

// --- Parser --------------------------------------------------------------------------------

std::string_view Sample::label(std::string_view name) const {
  for (const auto& [k, v] : labels)
    if (k == name) return v;
  return {};
}

const Sample* Scrape::find(std::string_view name, const Labels& match) const {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      if (s.label(k) != v) {
        ok = false;
        break;
      }
    }
    if (ok) return &s;
  }
  return nullptr;
}

double Scrape::sum(std::string_view name) const {
  double total = 0;
  for (const auto& s : samples)
    if (s.name == name) total += s.value;
  return total;
}

namespace {

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

Result<double> parseValue(std::string_view s) {
  if (s == "+Inf" || s == "Inf" || s == "+inf" || s == "inf") return HUGE_VAL;
  if (s == "-Inf" || s == "-inf") return -HUGE_VAL;
  if (s == "NaN" || s == "nan") return std::nan("");
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    return Error{"bad sample value '" + std::string(s) + "'"};
  return v;
}

// Parses one sample line into `out`; returns an error message (empty on success).
std::string parseSampleLine(std::string_view line, Sample& out) {
  std::size_t i = 0;
  if (i >= line.size() || !isNameStart(line[i])) return "expected a metric name";
  while (i < line.size() && isNameChar(line[i])) ++i;
  out.name.assign(line.substr(0, i));
  out.labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      std::size_t ks = i;
      if (i >= line.size() || !isNameStart(line[i])) return "expected a label name";
      while (i < line.size() && isNameChar(line[i])) ++i;
      std::string key(line.substr(ks, i - ks));
      // A label set names each label once, as Prometheus' text parser (expfmt) requires.
      for (const auto& [name, value] : out.labels)
        if (name == key) return "duplicate label " + key;
      if (i >= line.size() || line[i] != '=') return "expected '=' after label " + key;
      ++i;
      if (i >= line.size() || line[i] != '"') return "expected '\"' for label " + key;
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) break;
          char e = line[i++];
          value += e == 'n' ? '\n' : e;  // \\ -> \, \" -> ", \n -> newline
        } else {
          value += c;
        }
      }
      if (!closed) return "unterminated value of label " + key;
      out.labels.emplace_back(std::move(key), std::move(value));
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      } else {
        return "expected ',' or '}' in labels";
      }
    }
  }
  if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) return "expected a value";
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  std::size_t vs = i;
  while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
  auto v = parseValue(line.substr(vs, i - vs));
  if (!v) return v.error().message;
  out.value = *v;
  // An optional integer timestamp may follow; it is ignored.
  return {};
}

}  // namespace

Result<Scrape> parse(std::string_view text) {
  Scrape scrape;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  Sample sample;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;
    if (line.front() == '#') {
      // "# TYPE name type" is kept; other comments (HELP, free text) are skipped.
      if (line.starts_with("# TYPE ")) {
        auto rest = line.substr(7);
        auto sp = rest.find(' ');
        if (sp != std::string_view::npos)
          scrape.types[std::string(rest.substr(0, sp))] = std::string(rest.substr(sp + 1));
      }
      continue;
    }
    auto err = parseSampleLine(line, sample);
    if (!err.empty()) return Error{"line " + std::to_string(line_no) + ": " + err};
    scrape.samples.push_back(std::move(sample));
    sample = Sample{};
  }
  return scrape;
}

}  // namespace tidegate::prom

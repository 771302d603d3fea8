// Fuzzes the Prometheus text parser (common/prometheus.h `parse`), which reads every engine's
// /metrics (engines are not trusted more than clients). Invariants:
// - parse returns a value or an error naming a line, never throws;
// - what it reads, written back with TextWriter, parses to the same samples (names, labels,
//   values; NaN as NaN), with label values that are not UTF-8 written as U+FFFD, so writing
//   is a fixed point after one round;
// - Scrape::find and Scrape::sum agree with the samples.

#include <cmath>
#include <cstdint>
#include <string>

#include "common/prometheus.h"
#include "fuzz_check.h"

namespace prom = tidegate::prom;

namespace {

std::string write(const prom::Scrape& scrape) {
  prom::TextWriter w;
  for (const auto& s : scrape.samples) w.sample(s.name, s.labels, s.value);
  return w.take();
}

bool sameValue(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool sameSamples(const prom::Scrape& a, const prom::Scrape& b, bool exact_labels) {
  if (a.samples.size() != b.samples.size()) return false;
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    const auto &x = a.samples[i], &y = b.samples[i];
    if (x.name != y.name || !sameValue(x.value, y.value)) return false;
    if (x.labels.size() != y.labels.size()) return false;
    for (std::size_t j = 0; j < x.labels.size(); ++j) {
      if (x.labels[j].first != y.labels[j].first) return false;
      if (exact_labels && x.labels[j].second != y.labels[j].second) return false;
    }
  }
  return true;
}

// True when every label value is UTF-8: escaping then only escapes (it writes U+FFFD for bytes
// that are not UTF-8).
bool utf8Labels(const prom::Scrape& scrape) {
  for (const auto& s : scrape.samples) {
    for (const auto& [name, value] : s.labels) {
      std::string escaped;
      for (char c : value) {
        if (c == '\\') {
          escaped += "\\\\";
        } else if (c == '"') {
          escaped += "\\\"";
        } else if (c == '\n') {
          escaped += "\\n";
        } else {
          escaped += c;
        }
      }
      if (prom::escapeLabelValue(value) != escaped) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto scrape = prom::parse(tidegate::fuzz::asText(data, size));
  if (!scrape) {
    FUZZ_CHECK(scrape.error().message.starts_with("line "));
    return 0;
  }
  const std::string text = write(*scrape);
  const auto again = prom::parse(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(sameSamples(*scrape, *again, utf8Labels(*scrape)));
  FUZZ_CHECK(write(*again) == text);

  for (const auto& s : scrape->samples) {
    const auto* found = scrape->find(s.name, s.labels);
    FUZZ_CHECK(found && found->name == s.name);
    for (const auto& [name, value] : s.labels) FUZZ_CHECK(found->label(name) == value);
  }
  if (!scrape->samples.empty()) {
    const std::string& name = scrape->samples.front().name;
    double sum = 0;
    for (const auto& s : scrape->samples)
      if (s.name == name) sum += s.value;
    FUZZ_CHECK(sameValue(scrape->sum(name), sum));
  }
  return 0;
}

#pragma once
// Prometheus text exposition format (version 0.0.4): a writer, a small metric registry, and a
// parser for scraping engines.
//
// Registry: families of counters, gauges and histograms with labels. Metric objects are owned by
// their family, live as long as the registry, and never move, so hot paths look a child up once
// and keep the reference. Updating a metric is lock-free (relaxed atomics) and safe from any
// thread; creating a child or rendering takes the family's mutex.
//
// Parser: reads what engines expose (vLLM, llama.cpp, tidegate). Never trusts the input: a bad
// line is an error naming the line number, not a crash.

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace tidegate::prom {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Escapes a label value: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view v);
// Escapes HELP text: backslash and newline.
std::string escapeHelp(std::string_view v);
// Formats a sample value the way Prometheus reads it (+Inf, -Inf, NaN, shortest round trip).
std::string formatValue(double v);

// Low-level writer of the exposition text.
class TextWriter {
 public:
  // Writes `# HELP` and `# TYPE` lines. `type` is counter|gauge|histogram|summary|untyped.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  // Same, with one extra label appended (used for histogram `le`).
  void sample(std::string_view name, const Labels& labels, std::string_view extra_name,
              std::string_view extra_value, double value);
  // Appends exposition text another TextWriter wrote (a collector's cached families).
  void append(std::string_view text) { out_.append(text); }
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void labels(const Labels& labels, std::string_view extra_name, std::string_view extra_value);
  std::string out_;
};

class Counter {
 public:
  // REQUIRES: v >= 0 (counters only go up).
  void inc(double v = 1) { v_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1) { v_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1) { v_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  // REQUIRES: bounds sorted ascending, finite; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then the +Inf count (== count()).
  std::vector<std::uint64_t> cumulative() const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // non-cumulative, bounds_.size()+1
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// A named family of metrics of one type, one child per label-value tuple.
template <class M>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<M>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // Returns the child for these label values, creating it on first use.
  // REQUIRES: values.size() == label_names().size().
  M& with(const std::vector<std::string>& values) {
    std::lock_guard lock(mu_);
    auto it = children_.find(values);
    if (it == children_.end()) it = children_.emplace(values, make_()).first;
    return *it->second;
  }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labelNames() const { return label_names_; }

  // Calls fn(labels, metric) for every child, in label order.
  template <class Fn>
  void forEach(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [values, metric] : children_) {
      Labels labels;
      labels.reserve(values.size());
      for (std::size_t i = 0; i < values.size(); ++i)
        labels.emplace_back(label_names_[i], values[i]);
      fn(labels, *metric);
    }
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<M>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

// Counters of one family whose last label is an HTTP status: a status's child is looked up on
// its first use and kept in an atomic slot, so later updates take no lock and build no labels.
// Thread-safe. The family must outlive it (families live as long as their registry).
class CountersByStatus {
 public:
  // `labels`: the values of every label of `family` but the last one, the status.
  CountersByStatus(Family<Counter>& family, std::vector<std::string> labels);
  // The counter of `status`; a status outside 100..599 (never sent over HTTP/1.1) counts as 500.
  Counter& at(int status);

 private:
  static constexpr int kMin = 100, kMax = 599;
  Family<Counter>& family_;
  std::vector<std::string> labels_;
  std::array<std::atomic<Counter*>, kMax - kMin + 1> slots_{};
};

// The q-quantile (0..1) of a histogram's observations as PromQL's histogram_quantile computes
// it: linear interpolation inside the bucket the rank falls in (from 0 for the first bucket);
// a rank in the +Inf bucket gives the highest finite bound. `cumulative` as
// Histogram::cumulative() returns it: one count per bound, then the +Inf count.
// NaN when there is no observation or the sizes do not match.
double histogramQuantile(double q, std::span<const double> bounds,
                         std::span<const std::uint64_t> cumulative);

class Registry {
 public:
  Family<Counter>& counter(std::string name, std::string help,
                           std::vector<std::string> labels = {});
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  Family<Histogram>& histogram(std::string name, std::string help, std::vector<std::string> labels,
                               std::vector<double> bounds);
  // A collector writes metrics computed at scrape time (e.g. queue lengths read from a model).
  // It runs on the rendering thread, after the registered families.
  void addCollector(std::function<void(TextWriter&)> collector);

  std::string render() const;

 private:
  struct Entry {
    enum Kind { kCounter, kGauge, kHistogram } kind;
    void* family;
  };
  mutable std::mutex mu_;
  std::deque<Family<Counter>> counters_;
  std::deque<Family<Gauge>> gauges_;
  std::deque<Family<Histogram>> histograms_;
  std::vector<Entry> order_;
  std::vector<std::function<void(TextWriter&)>> collectors_;
};

// --- Parsing -------------------------------------------------------------------------------

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;

  // The value of label `name`, or empty if absent.
  std::string_view label(std::string_view name) const;
};

struct Scrape {
  std::vector<Sample> samples;
  std::map<std::string, std::string, std::less<>> types;  // family name -> type from # TYPE

  // First sample named `name` whose labels include all of `match`; nullptr if none.
  const Sample* find(std::string_view name, const Labels& match = {}) const;
  // Sum of all samples named `name` (0 if none).
  double sum(std::string_view name) const;
};

// Parses exposition text. Errors name the 1-based line and what was wrong.
Result<Scrape> parse(std::string_view text);

}  // namespace tidegate::prom

#pragma once
// Self-contained reports: SVG charts and an HTML document around them, shared by
// `tidegate simulate --report` and `tidegate bench --report` so both look alike.
//
// Everything here is pure: functions take values and return strings; the caller writes them to
// a file. Each chart is a complete SVG document (xmlns, width/height/viewBox, a white
// background, its font set on the root, no ids, classes, scripts or external references), so
// the same string can be inlined in the HTML or saved as a .svg file that GitHub renders.
//
// Robustness contract: any input renders. Non-finite points are dropped; a chart without finite
// points says "no data"; one point or all-equal values get a sane axis around them. No "nan" or
// "inf" ever reaches the output, and all text (titles, series names from user configuration) is
// XML-escaped. Long series are downsampled (see downsample) so that a day of per-second points
// stays a few tens of kilobytes per series.
//
// Thread-safety: no shared state; call from any thread.

#include <array>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidegate::report {

// Okabe-Ito's colour-blind-safe palette, in the order series take it (yellow, hard to see on
// white, and black, kept for reference lines, come last). Callers that give a quantity the same
// colour in every chart (the owned pool, the elastic pool) index it explicitly.
inline constexpr std::array<std::string_view, 8> kPalette = {
    "#0072B2",  // blue
    "#E69F00",  // orange
    "#009E73",  // bluish green
    "#D55E00",  // vermillion
    "#CC79A7",  // reddish purple
    "#56B4E9",  // sky blue
    "#F0E442",  // yellow
    "#000000",  // black
};

// Series longer than this are downsampled before drawing (per series; a stacked chart shares
// one set of x values across its layers).
inline constexpr std::size_t kMaxPointsPerSeries = 1500;

// `&`, `<`, `>`, `"` and `'` as entities: safe in XML/HTML text and in quoted attributes.
std::string escapeXml(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Axes.

// How an axis's values read.
enum class Format {
  kNumber,   // 1-2-5 ticks; "0.5", "120", "12k", "1.5M"
  kTime,     // elapsed seconds on clock steps (15s, 5m, 1h, 6h, 1d): "0", "30s", "5m", "1h30m"
  kLatency,  // seconds on 1-2-5 ticks: "0", "250ms" (below a second), "1.5s"
  kPercent,  // fractions: 0.25 is "25%"
};

// An axis's tick positions; [lo, hi] is the drawn range (it covers the data).
struct Ticks {
  double lo = 0;
  double hi = 1;
  double step = 1;
  std::vector<double> values;  // lo, lo + step, ..., hi
};

// "Nice" ticks over [lo, hi]: a step of 1, 2 or 5 times a power of ten such that there are at
// most about `target` steps, and the range widened outwards to whole steps. A degenerate range
// (lo == hi) is widened around the value; non-finite bounds give [0, 1]. Never empty.
Ticks niceTicks(double lo, double hi, int target = 5);
// The same for elapsed seconds, on clock steps (1, 2, 5, 10, 15, 30 s; 1, 2, 5, 10, 15, 30 min;
// 1, 2, 3, 6, 12 h; then whole days on 1-2-5); spans under 2 seconds fall back to niceTicks.
Ticks timeTicks(double lo, double hi, int target = 6);
// Ticks for `format` (timeTicks for kTime, niceTicks otherwise).
Ticks ticksFor(Format format, double lo, double hi);
// The labels of `ticks`, all in one unit chosen by the span (ms or s for kLatency), with as
// many decimals as the step needs and no more.
std::vector<std::string> tickLabels(Format format, const Ticks& ticks);
// Elapsed seconds as "0", "45s", "5m", "1h30m", "1d6h", down to the unit of `step` (the tick
// step: 90 s at a 30 s step is "1m30s", 5400 s at a 30 min step is "1h30m"); steps under a
// second add decimals ("2.5s").
std::string formatTime(double seconds, double step);

// Charts default both axes to Axis{} (a number axis from zero): a time series says
// `.x = {.title = "time", .format = Format::kTime}` (designated initializers reset every field
// not named, so per-chart defaults here would silently vanish).
struct Axis {
  std::string title;  // drawn along the axis; empty for none
  Format format = Format::kNumber;
  // Whether the range includes zero however far the data are from it (counts, rates, costs);
  // false fits the data (a latency scatter, a cost range).
  bool from_zero = true;
  // Values the range reaches at least, whatever the data (NaN: none): a live window of the last
  // five minutes drawn whole while it has only a few points, now always at its right edge.
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
};

// A labelled horizontal line, e.g. {2.0, "TTFT p90 SLO 2 s"}. It is kept inside the y range.
struct ReferenceLine {
  double y = 0;
  std::string label;
};

// ---------------------------------------------------------------------------------------------
// Line charts.

struct Point {
  double x = 0;
  double y = 0;
};

struct Series {
  std::string name;           // legend text; escaped when drawn
  std::vector<Point> points;  // REQUIRES: sorted by x (non-finite points are dropped)
  std::string color;          // "#rrggbb"; empty takes kPalette[index of the series]
};

struct LineChart {
  std::string title;
  Axis x;
  Axis y;
  std::vector<Series> series;
  // Step interpolation: a value holds until the next point (replica and node counts).
  bool step = false;
  // Stacked areas: each series is drawn on top of the ones before it (replicas per pool: owned
  // then elastic). See stackSeries for how series with different x values add up.
  bool stacked = false;
  std::vector<ReferenceLine> references;
  int width = 720;
  int height = 300;
};

// The standalone SVG of `chart`.
std::string renderLineChart(const LineChart& chart);

// The cumulative tops of stacked `series`: result[i] is series 0..i summed, at the union of all
// x values. A series counts 0 before its first point and holds its last value after its last;
// in between it is interpolated (held when `step`). Non-finite points are dropped first.
std::vector<Series> stackSeries(const std::vector<Series>& series, bool step);

// At most `max_points` of `points` (sorted by x) that still look the same drawn: interior points
// on a flat run are dropped (lossless for both step and straight interpolation), then the rest
// go into buckets that keep each bucket's minimum and maximum, so peaks and dips survive. The
// first and last points are always kept. Non-finite points are dropped.
// REQUIRES: max_points >= 4.
std::vector<Point> downsample(std::span<const Point> points,
                              std::size_t max_points = kMaxPointsPerSeries);

// ---------------------------------------------------------------------------------------------
// Distributions.

// The empirical CDF of `samples` as a series (x = value, y = fraction of samples <= x), at most
// `max_points` points taken at evenly spaced ranks (the minimum and maximum always among them).
// Non-finite samples are ignored; no samples give an empty series.
Series cdfSeries(std::string name, std::span<const double> samples, std::size_t max_points = 500);
// A latency CDF chart of `series` (from cdfSeries): x in kLatency, y in kPercent, stepped.
LineChart cdfChart(std::string title, std::string x_title, std::vector<Series> series);

// ---------------------------------------------------------------------------------------------
// Over time: timed samples (x = seconds from the start) aggregated per time bucket, bucket k
// being [k * bucket_s, (k + 1) * bucket_s), each point at its bucket's middle.

// A bucket width for a run of `span` seconds: the clock step (1, 2, 5, 10, 15, 30 s, 1 min, ...)
// that makes at most about `target` buckets.
double bucketWidth(double span, int target = 120);

// A rate: the sum of the events' weights (Point::y; 1 counts them) per bucket divided by the
// bucket's width, for every bucket from 0 through `end` and the last event. An empty bucket is
// 0: a rate that drops to zero is drawn at zero, not left out. Events before 0 or non-finite
// are dropped; at most 1,000,000 buckets (events past them are dropped). A bucket_s that is not
// positive and finite gives an empty series.
Series rateSeries(std::string name, std::span<const Point> events, double bucket_s, double end = 0);
// The q-quantile (0..1; common/quantile.h) of the samples' y per bucket that has samples; an
// empty bucket has no point (no requests is not zero latency). Non-finite samples are dropped.
Series quantileSeries(std::string name, std::span<const Point> samples, double bucket_s, double q);

// ---------------------------------------------------------------------------------------------
// Scatter charts (a sweep: cost against an SLO measure, one point per configuration).

struct ScatterPoint {
  double x = 0;
  double y = 0;
  std::string label;         // a tooltip; drawn as text when highlighted
  bool highlighted = false;  // ringed and labelled: the cheapest configuration meeting every SLO
  bool ok = true;            // a filled dot when true, a cross in another colour when false
};

struct ScatterChart {
  std::string title;
  Axis x;
  Axis y;  // kPercent with values up to 1 (attainment) stops at 100%
  std::vector<ScatterPoint> points;
  // Indices into points joined by a line in x order (the Pareto frontier); out-of-range
  // indices are ignored.
  std::vector<std::size_t> frontier;
  std::string frontier_label = "Pareto frontier";
  std::string ok_label = "meets every SLO";
  std::string not_ok_label = "misses an SLO";
  std::vector<ReferenceLine> references;
  int width = 720;
  int height = 360;
};

std::string renderScatterChart(const ScatterChart& chart);

// The indices of the points no other point beats on both axes, sorted by x: lower x is better,
// and higher y when `higher_y_is_better` (SLO attainment), lower y otherwise (TTFT p90).
// Points with a non-finite coordinate are never on it.
std::vector<std::size_t> paretoFrontier(std::span<const ScatterPoint> points,
                                        bool higher_y_is_better);

// ---------------------------------------------------------------------------------------------
// The HTML document.

// A key/value summary table ("Requests" → "12,345").
using Summary = std::vector<std::pair<std::string, std::string>>;

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // short rows are padded with empty cells
  // A row to emphasise: the configured policy, the cheapest configuration meeting every SLO.
  std::optional<std::size_t> highlighted_row;
};

// `v` printf-formatted for a table cell ("%.2f" → "12.30"); "-" when it is not finite.
std::string formatNumber(double v, const char* printf_format = "%.2f");

// Whether a table cell reads as a number ("12", "-3.5", "1,234", "$12.30", "99.2%", "250ms",
// "12k"): a column whose non-empty cells all do is right-aligned.
bool looksNumeric(std::string_view cell);

// One self-contained HTML file: inline CSS, no scripts, no external references, readable when
// printed. The markup is also well-formed XML. Text arguments are escaped; chart SVGs are
// inserted as they are.
class Document {
 public:
  explicit Document(std::string title);

  // A section heading; level 2 (a section) or 3 (a subsection), clamped to 2..4.
  void heading(std::string_view text, int level = 2);
  void paragraph(std::string_view text);
  void summary(const Summary& rows);
  void table(const Table& table);
  // REQUIRES: `svg` is the output of renderLineChart or renderScatterChart.
  void chart(std::string_view svg, std::string_view caption = {});

  std::string html() const;

 private:
  std::string title_;
  std::string body_;
};

}  // namespace tidegate::report

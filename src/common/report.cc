#include "common/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <tuple>

#include "common/quantile.h"

namespace tidegate::report {
namespace {

// Values beyond this are clamped before any arithmetic, so spans and steps stay finite.
constexpr double kHuge = 1e300;
// Pixel coordinates are clamped to this; they are inside the plot anyway.
constexpr double kMaxPixel = 1e6;

constexpr std::string_view kFontFamily =
    "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
constexpr std::string_view kInk = "#222222";        // titles, axes
constexpr std::string_view kMuted = "#555555";      // tick labels, axis titles
constexpr std::string_view kGrid = "#e6e6e6";       // grid lines
constexpr std::string_view kReference = "#000000";  // reference lines (black: the palette's last)
constexpr std::string_view kOkColor = kPalette[0];
constexpr std::string_view kNotOkColor = kPalette[3];
constexpr std::string_view kFrontierColor = "#888888";

// `v` with at most `decimals` decimals, trailing zeros trimmed; never "-0", "nan" or "inf".
// std::to_chars, unlike printf, does not follow the C locale's decimal separator.
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) v = 0;
  v = std::clamp(v, -kHuge, kHuge);
  decimals = std::clamp(decimals, 0, 9);
  char buf[400];
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "0";
  std::string s(buf, end);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// A pixel coordinate: one decimal is finer than any screen needs and keeps files small.
std::string px(double v) {
  return fixed(std::clamp(std::isfinite(v) ? v : 0.0, -kMaxPixel, kMaxPixel), 1);
}

// The decimals that tell apart multiples of `step` (0.2 → 1, 0.05 → 2, 5 → 0).
int decimalsFor(double step) {
  if (!(step > 0) || !std::isfinite(step)) return 0;
  return std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 9);
}

// Rough width in pixels of `text` at font size 12 (for layout only; counts UTF-8 code points).
double textWidth(std::string_view text, double font_size = 12) {
  std::size_t chars = 0;
  for (const char c : text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return static_cast<double>(chars) * font_size * 0.56;
}

bool finitePoint(const Point& p) { return std::isfinite(p.x) && std::isfinite(p.y); }

std::vector<Point> finitePoints(std::span<const Point> points) {
  std::vector<Point> out;
  out.reserve(points.size());
  for (const Point& p : points) {
    if (finitePoint(p))
      out.push_back({std::clamp(p.x, -kHuge, kHuge), std::clamp(p.y, -kHuge, kHuge)});
  }
  return out;
}

// Bounds sanitised for tick computation: finite, ordered, and a span that is not zero.
std::pair<double, double> usableRange(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  lo = std::clamp(lo, -kHuge, kHuge);
  hi = std::clamp(hi, -kHuge, kHuge);
  if (lo > hi) std::swap(lo, hi);
  const double magnitude = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= magnitude * 1e-12) {
    if (magnitude == 0) return {0, 1};
    const double half = std::abs(lo) * 0.5;
    return {lo - half, hi + half};
  }
  return {lo, hi};
}

// 1, 2 or 5 times a power of ten, the smallest at least `raw` (> 0).
double niceStep(double raw) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  constexpr double kSlack = 1 + 1e-9;  // 0.2 / 0.1 is 2.0000000000000004
  const double nice = norm <= kSlack ? 1 : norm <= 2 * kSlack ? 2 : norm <= 5 * kSlack ? 5 : 10;
  return nice * magnitude;
}

// Whole multiples of `step` from at or below lo to at or above hi.
Ticks ticksWithStep(double lo, double hi, double step) {
  constexpr double kSlack = 1e-9;
  const double first = std::floor(lo / step + kSlack);
  const double last = std::ceil(hi / step - kSlack);
  const auto count = static_cast<std::size_t>(std::clamp(last - first, 1.0, 1000.0));
  Ticks t;
  t.step = step;
  for (std::size_t i = 0; i <= count; ++i) {
    double v = (first + static_cast<double>(i)) * step;
    if (std::abs(v) < step * kSlack) v = 0;
    t.values.push_back(v);
  }
  t.lo = t.values.front();
  t.hi = t.values.back();
  return t;
}

// Indices of the rows of `columns` (each a y value per row) to draw so that every column looks
// the same: interior rows on a flat run in all columns go, then buckets keep each column's
// minimum and maximum. Rows 0 and n-1 always stay.
std::vector<std::size_t> keepIndices(const std::vector<std::vector<double>>& columns,
                                     std::size_t rows, std::size_t max_points) {
  std::vector<std::size_t> kept;
  if (rows == 0) return kept;
  kept.push_back(0);
  for (std::size_t i = 1; i + 1 < rows; ++i) {
    const bool flat = std::all_of(columns.begin(), columns.end(), [&](const auto& c) {
      return c[i - 1] == c[i] && c[i] == c[i + 1];
    });
    if (!flat) kept.push_back(i);
  }
  if (rows > 1) kept.push_back(rows - 1);
  max_points = std::max<std::size_t>(max_points, 4);
  if (kept.size() <= max_points) return kept;

  const std::size_t interior = kept.size() - 2;
  const std::size_t per_bucket = 2 * std::max<std::size_t>(columns.size(), 1);
  const std::size_t buckets = std::max<std::size_t>((max_points - 2) / per_bucket, 1);
  std::vector<std::size_t> out{kept.front()};
  std::vector<std::size_t> picks;
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = 1 + b * interior / buckets;
    const std::size_t end = 1 + (b + 1) * interior / buckets;
    if (begin == end) continue;
    picks.clear();
    for (const auto& c : columns) {
      std::size_t lo = kept[begin], hi = kept[begin];
      for (std::size_t k = begin; k < end; ++k) {
        if (c[kept[k]] < c[lo]) lo = kept[k];
        if (c[kept[k]] > c[hi]) hi = kept[k];
      }
      picks.push_back(lo);
      picks.push_back(hi);
    }
    std::sort(picks.begin(), picks.end());
    picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
    out.insert(out.end(), picks.begin(), picks.end());
  }
  out.push_back(kept.back());
  return out;
}

// Labels in one unit: `scale` divides the values, `suffix` follows each.
std::vector<std::string> scaledLabels(const Ticks& t, double scale, std::string_view suffix) {
  std::vector<std::string> out;
  const int decimals = decimalsFor(t.step / scale);
  for (const double v : t.values) {
    std::string s = fixed(v / scale, decimals);
    if (s != "0") s += suffix;
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Drawing.

enum class Glyph { kLine, kArea, kDot, kCross };

struct LegendEntry {
  std::string_view name;
  std::string_view color;
  Glyph glyph;
};

// The plot area in pixels and the mapping of data into it.
struct Plot {
  double left = 0, right = 0, top = 0, bottom = 0;
  Ticks x, y;
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double py(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

struct Canvas {
  std::string out;
  Plot plot;
};

constexpr double kTitleY = 22;
constexpr double kLegendTop = 40;
constexpr double kLegendRow = 18;
constexpr double kPad = 12;

void openSvg(std::string& out, std::string_view title, int width, int height) {
  const std::string w = std::to_string(width), h = std::to_string(height);
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h +
         "\" viewBox=\"0 0 " + w + " " + h + "\" font-family=\"" + std::string(kFontFamily) +
         "\" font-size=\"12\" role=\"img\">\n";
  out += "<title>" + escapeXml(title) + "</title>\n";
  out += "<rect width=\"" + w + "\" height=\"" + h + "\" fill=\"#ffffff\"/>\n";
  out += "<text x=\"" + px(kPad) + "\" y=\"" + px(kTitleY) +
         "\" font-size=\"15\" font-weight=\"bold\" fill=\"" + std::string(kInk) + "\">" +
         escapeXml(title) + "</text>\n";
}

void drawGlyph(std::string& out, Glyph glyph, std::string_view color, double x, double y) {
  const std::string c(color);
  switch (glyph) {
    case Glyph::kLine:
      out +=
          "<path d=\"M" + px(x) + " " + px(y) + "h16\" stroke=\"" + c + "\" stroke-width=\"2.5\"/>";
      break;
    case Glyph::kArea:
      out += "<rect x=\"" + px(x) + "\" y=\"" + px(y - 5) +
             "\" width=\"16\" height=\"10\" fill=\"" + c + "\"/>";
      break;
    case Glyph::kDot:
      out += "<circle cx=\"" + px(x + 8) + "\" cy=\"" + px(y) + "\" r=\"4.5\" fill=\"" + c + "\"/>";
      break;
    case Glyph::kCross:
      out += "<path d=\"M" + px(x + 4) + " " + px(y - 4) + "l8 8m0 -8l-8 8\" stroke=\"" + c +
             "\" stroke-width=\"2\"/>";
      break;
  }
}

// Draws the legend below the title, wrapping at the width; returns the rows it took.
int drawLegend(std::string& out, std::span<const LegendEntry> entries, int width) {
  int rows = entries.empty() ? 0 : 1;
  double x = kPad;
  for (const LegendEntry& e : entries) {
    const double w = 22 + textWidth(e.name) + 16;
    if (x > kPad && x + w > width - kPad) {
      x = kPad;
      ++rows;
    }
    const double y = kLegendTop + (rows - 1) * kLegendRow;
    drawGlyph(out, e.glyph, e.color, x, y - 4);
    out += "<text x=\"" + px(x + 22) + "\" y=\"" + px(y) + "\" fill=\"" + std::string(kInk) +
           "\">" + escapeXml(e.name) + "</text>\n";
    x += w;
  }
  return rows;
}

// The document, title, legend, grid, tick labels and axis titles: everything but the data.
Canvas beginChart(std::string_view title, int width, int height,
                  std::span<const LegendEntry> legend, const Axis& xa, const Ticks& xt,
                  const Axis& ya, const Ticks& yt) {
  Canvas c;
  openSvg(c.out, title, width, height);
  const int rows = drawLegend(c.out, legend, width);

  const std::vector<std::string> xl = tickLabels(xa.format, xt), yl = tickLabels(ya.format, yt);
  double y_label_width = 0;
  for (const auto& l : yl) y_label_width = std::max(y_label_width, textWidth(l, 11));
  Plot& p = c.plot;
  p.x = xt;
  p.y = yt;
  p.top = kLegendTop + rows * kLegendRow + (rows ? 2 : -8);
  p.left = kPad + (ya.title.empty() ? 0 : 18) + y_label_width + 8;
  p.right = width - std::max(20.0, textWidth(xl.back(), 11) / 2 + 8);
  p.bottom = height - (8 + 16 + (xa.title.empty() ? 0 : 18));
  // A chart too small for its labels still maps into a non-empty area.
  p.right = std::max(p.right, p.left + 10);
  p.bottom = std::max(p.bottom, p.top + 10);

  std::string& out = c.out;
  out += "<g stroke=\"" + std::string(kGrid) + "\" stroke-width=\"1\">";
  for (const double v : yt.values) {
    out += "<path d=\"M" + px(p.left) + " " + px(p.py(v)) + "H" + px(p.right) + "\"/>";
  }
  for (const double v : xt.values) {
    out += "<path d=\"M" + px(p.px(v)) + " " + px(p.top) + "V" + px(p.bottom) + "\"/>";
  }
  out += "</g>\n<g fill=\"" + std::string(kMuted) + "\" font-size=\"11\" text-anchor=\"end\">";
  for (std::size_t i = 0; i < yt.values.size(); ++i) {
    out += "<text x=\"" + px(p.left - 6) + "\" y=\"" + px(p.py(yt.values[i]) + 4) + "\">" +
           escapeXml(yl[i]) + "</text>";
  }
  out += "</g>\n<g fill=\"" + std::string(kMuted) + "\" font-size=\"11\" text-anchor=\"middle\">";
  for (std::size_t i = 0; i < xt.values.size(); ++i) {
    out += "<text x=\"" + px(p.px(xt.values[i])) + "\" y=\"" + px(p.bottom + 16) + "\">" +
           escapeXml(xl[i]) + "</text>";
  }
  out += "</g>\n";
  if (!xa.title.empty()) {
    out += "<text x=\"" + px((p.left + p.right) / 2) + "\" y=\"" + px(height - 8.0) +
           "\" text-anchor=\"middle\" fill=\"" + std::string(kMuted) + "\">" + escapeXml(xa.title) +
           "</text>\n";
  }
  if (!ya.title.empty()) {
    out += "<text transform=\"rotate(-90)\" x=\"" + px(-(p.top + p.bottom) / 2) + "\" y=\"" +
           px(kPad + 10) + "\" text-anchor=\"middle\" fill=\"" + std::string(kMuted) + "\">" +
           escapeXml(ya.title) + "</text>\n";
  }
  return c;
}

void drawReferences(Canvas& c, std::span<const ReferenceLine> refs) {
  const Plot& p = c.plot;
  for (const ReferenceLine& r : refs) {
    if (!std::isfinite(r.y)) continue;
    const std::string y = px(p.py(r.y));
    c.out += "<path d=\"M" + px(p.left) + " " + y + "H" + px(p.right) + "\" stroke=\"" +
             std::string(kReference) + "\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>\n";
    if (!r.label.empty()) {
      // A white halo keeps the label readable over the data.
      c.out += "<text x=\"" + px(p.right - 4) + "\" y=\"" + px(p.py(r.y) - 5) +
               "\" text-anchor=\"end\" font-size=\"11\" fill=\"" + std::string(kReference) +
               "\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">" +
               escapeXml(r.label) + "</text>\n";
    }
  }
}

std::string finishChart(Canvas& c) {
  const Plot& p = c.plot;
  c.out += "<path d=\"M" + px(p.left) + " " + px(p.top) + "V" + px(p.bottom) + "H" + px(p.right) +
           "\" fill=\"none\" stroke=\"" + std::string(kInk) + "\" stroke-width=\"1\"/>\n</svg>\n";
  return std::move(c.out);
}

// Widens [lo, hi] to the axis's own bounds, when it has them.
void widenToAxis(const Axis& axis, double& lo, double& hi) {
  if (std::isfinite(axis.min)) lo = std::min(lo, std::clamp(axis.min, -kHuge, kHuge));
  if (std::isfinite(axis.max)) hi = std::max(hi, std::clamp(axis.max, -kHuge, kHuge));
}

std::string noDataChart(std::string_view title, int width, int height) {
  std::string out;
  openSvg(out, title, width, height);
  out += "<rect x=\"" + px(kPad) + "\" y=\"" + px(kLegendTop) + "\" width=\"" +
         px(width - 2 * kPad) + "\" height=\"" + px(height - kLegendTop - kPad) +
         "\" fill=\"none\" stroke=\"" + std::string(kGrid) + "\"/>\n";
  out += "<text x=\"" + px(width / 2.0) + "\" y=\"" + px((kLegendTop + height - kPad) / 2) +
         "\" text-anchor=\"middle\" font-size=\"14\" fill=\"" + std::string(kMuted) +
         "\">no data</text>\n</svg>\n";
  return out;
}

int sanitizeWidth(int w) { return std::clamp(w, 240, 4000); }
int sanitizeHeight(int h) { return std::clamp(h, 160, 4000); }

std::string_view seriesColor(const Series& s, std::size_t index) {
  return s.color.empty() ? kPalette[index % kPalette.size()] : std::string_view(s.color);
}

// Path data through `points` in pixels, stepped or straight, starting with a move.
std::string pathData(const Plot& p, std::span<const Point> points, bool step) {
  std::string d;
  d.reserve(points.size() * 12);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string x = px(p.px(points[i].x)), y = px(p.py(points[i].y));
    if (i == 0) {
      d += "M" + x + " " + y;
    } else if (step) {
      d += "H" + x + "V" + y;
    } else {
      d += (i == 1 ? "L" : " ") + x + " " + y;
    }
  }
  return d;
}

// Value of `points` (finite, sorted by x) at x under the stacking rule of stackSeries; `cursor`
// advances monotonically over increasing x.
double valueAt(std::span<const Point> points, double x, bool step, std::size_t& cursor) {
  if (points.empty() || x < points.front().x) return 0;
  while (cursor + 1 < points.size() && points[cursor + 1].x <= x) ++cursor;
  const Point& a = points[cursor];
  if (step || cursor + 1 == points.size()) return a.y;
  const Point& b = points[cursor + 1];
  return a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x);
}

}  // namespace

std::string escapeXml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Ticks niceTicks(double lo, double hi, int target) {
  std::tie(lo, hi) = usableRange(lo, hi);
  return ticksWithStep(lo, hi, niceStep((hi - lo) / std::max(target, 1)));
}

Ticks timeTicks(double lo, double hi, int target) {
  std::tie(lo, hi) = usableRange(lo, hi);
  if (hi - lo < 2) return niceTicks(lo, hi, target);
  static constexpr double kSteps[] = {1,   2,   5,    10,   15,   30,    60,    120,   300,
                                      600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400};
  const double raw = (hi - lo) / std::max(target, 1);
  for (const double step : kSteps) {
    if (step >= raw) return ticksWithStep(lo, hi, step);
  }
  return ticksWithStep(lo, hi, niceStep(raw / 86400) * 86400);
}

Ticks ticksFor(Format format, double lo, double hi) {
  return format == Format::kTime ? timeTicks(lo, hi) : niceTicks(lo, hi);
}

std::string formatTime(double seconds, double step) {
  if (!std::isfinite(seconds)) return "0";
  if (!(step > 0) || !std::isfinite(step)) step = 1;
  seconds = std::clamp(std::round(seconds / step) * step, -1e15, 1e15);
  if (seconds == 0) return "0";
  std::string out = seconds < 0 ? "-" : "";
  seconds = std::abs(seconds);
  static constexpr std::pair<std::int64_t, std::string_view> kUnits[] = {
      {86400, "d"}, {3600, "h"}, {60, "m"}};
  // Whole units no finer than the step; seconds (with decimals below a 1 s step) last.
  auto whole = static_cast<std::int64_t>(std::floor(seconds + 1e-9));
  for (const auto& [unit, name] : kUnits) {
    const std::int64_t q = whole / unit;
    if (q > 0) out += std::to_string(q) + std::string(name);
    whole %= unit;
    if (static_cast<double>(unit) <= step) return out;  // the step's unit: finer ones are zero
  }
  const double rest = static_cast<double>(whole) + (seconds - std::floor(seconds + 1e-9));
  const std::string s = fixed(rest, step < 1 ? decimalsFor(step) : 0);
  if (s != "0") out += s + "s";
  return out;
}

std::vector<std::string> tickLabels(Format format, const Ticks& t) {
  double largest = 0;
  for (const double v : t.values) largest = std::max(largest, std::abs(v));
  switch (format) {
    case Format::kTime: {
      std::vector<std::string> out;
      for (const double v : t.values) out.push_back(formatTime(v, t.step));
      return out;
    }
    case Format::kLatency:
      return largest < 1 ? scaledLabels(t, 1e-3, "ms") : scaledLabels(t, 1, "s");
    case Format::kPercent: {
      auto out = scaledLabels(t, 0.01, "%");
      for (auto& l : out) {
        if (l == "0") l = "0%";
      }
      return out;
    }
    case Format::kNumber:
      break;
  }
  static constexpr std::pair<double, std::string_view> kScales[] = {
      {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e4, "k"}};
  for (const auto& [threshold, suffix] : kScales) {
    // 10k and up read as "k", but a million and up as "M": the scale is the threshold's
    // thousand-power, not the threshold itself.
    if (largest >= threshold) return scaledLabels(t, threshold == 1e4 ? 1e3 : threshold, suffix);
  }
  return scaledLabels(t, 1, "");
}

std::vector<Point> downsample(std::span<const Point> points, std::size_t max_points) {
  const std::vector<Point> clean = finitePoints(points);
  std::vector<std::vector<double>> ys(1);
  ys[0].reserve(clean.size());
  for (const Point& p : clean) ys[0].push_back(p.y);
  std::vector<Point> out;
  for (const std::size_t i : keepIndices(ys, clean.size(), max_points)) out.push_back(clean[i]);
  return out;
}

std::vector<Series> stackSeries(const std::vector<Series>& series, bool step) {
  std::vector<std::vector<Point>> clean;
  std::vector<double> xs;
  for (const Series& s : series) {
    clean.push_back(finitePoints(s.points));
    for (const Point& p : clean.back()) xs.push_back(p.x);
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());

  std::vector<Series> out;
  std::vector<double> sum(xs.size(), 0);
  for (std::size_t i = 0; i < series.size(); ++i) {
    Series top{series[i].name, {}, series[i].color};
    top.points.reserve(xs.size());
    std::size_t cursor = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      // A stack of quantities: a negative value counts as none.
      sum[k] += std::max(0.0, valueAt(clean[i], xs[k], step, cursor));
      top.points.push_back({xs[k], sum[k]});
    }
    out.push_back(std::move(top));
  }
  return out;
}

std::string renderLineChart(const LineChart& chart) {
  const int width = sanitizeWidth(chart.width), height = sanitizeHeight(chart.height);

  // What is drawn: per series its points, downsampled; stacked, the cumulative tops on shared x.
  std::vector<std::vector<Point>> drawn;
  if (chart.stacked) {
    const std::vector<Series> tops = stackSeries(chart.series, chart.step);
    std::vector<std::vector<double>> columns;
    for (const Series& t : tops) {
      columns.emplace_back();
      for (const Point& p : t.points) columns.back().push_back(p.y);
    }
    const std::size_t rows = tops.empty() ? 0 : tops.front().points.size();
    const std::vector<std::size_t> keep = keepIndices(columns, rows, kMaxPointsPerSeries);
    for (const Series& t : tops) {
      drawn.emplace_back();
      for (const std::size_t k : keep) drawn.back().push_back(t.points[k]);
    }
  } else {
    for (const Series& s : chart.series) drawn.push_back(downsample(s.points));
  }

  bool any = false;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& pts : drawn) {
    for (const Point& p : pts) {
      any = true;
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, p.y);
      y_hi = std::max(y_hi, p.y);
    }
  }
  if (!any) return noDataChart(chart.title, width, height);
  for (const ReferenceLine& r : chart.references) {
    if (std::isfinite(r.y)) {
      y_lo = std::min(y_lo, std::clamp(r.y, -kHuge, kHuge));
      y_hi = std::max(y_hi, std::clamp(r.y, -kHuge, kHuge));
    }
  }
  if (chart.x.from_zero) x_lo = std::min(x_lo, 0.0);
  if (chart.y.from_zero || chart.stacked) y_lo = std::min(y_lo, 0.0);
  widenToAxis(chart.x, x_lo, x_hi);
  widenToAxis(chart.y, y_lo, y_hi);

  std::vector<LegendEntry> legend;
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    if (chart.series[i].name.empty()) continue;
    legend.push_back({chart.series[i].name, seriesColor(chart.series[i], i),
                      chart.stacked ? Glyph::kArea : Glyph::kLine});
  }
  Canvas c =
      beginChart(chart.title, width, height, legend, chart.x, ticksFor(chart.x.format, x_lo, x_hi),
                 chart.y, ticksFor(chart.y.format, y_lo, y_hi));
  const Plot& p = c.plot;

  if (chart.stacked) {
    // Each layer is filled from its top down to the baseline, the highest first, so the layers
    // below paint over it: bands without drawing each band's lower edge.
    for (std::size_t i = drawn.size(); i-- > 0;) {
      if (drawn[i].empty()) continue;
      c.out += "<path d=\"" + pathData(p, drawn[i], chart.step) + "V" + px(p.py(0)) + "H" +
               px(p.px(drawn[i].front().x)) + "Z\" fill=\"" +
               std::string(seriesColor(chart.series[i], i)) + "\"/>\n";
    }
  } else {
    for (std::size_t i = 0; i < drawn.size(); ++i) {
      const std::string color(seriesColor(chart.series[i], i));
      if (drawn[i].size() == 1) {
        c.out += "<circle cx=\"" + px(p.px(drawn[i][0].x)) + "\" cy=\"" + px(p.py(drawn[i][0].y)) +
                 "\" r=\"3\" fill=\"" + color + "\"/>\n";
      } else if (!drawn[i].empty()) {
        c.out += "<path d=\"" + pathData(p, drawn[i], chart.step) + "\" fill=\"none\" stroke=\"" +
                 color + "\" stroke-width=\"1.6\" stroke-linejoin=\"round\"/>\n";
      }
    }
  }
  drawReferences(c, chart.references);
  return finishChart(c);
}

Series cdfSeries(std::string name, std::span<const double> samples, std::size_t max_points) {
  std::vector<double> v;
  v.reserve(samples.size());
  for (const double s : samples) {
    if (std::isfinite(s)) v.push_back(std::clamp(s, -kHuge, kHuge));
  }
  std::sort(v.begin(), v.end());
  Series out{std::move(name), {}, {}};
  const std::size_t n = v.size();
  const std::size_t m = std::min(n, std::max<std::size_t>(max_points, 2));
  for (std::size_t j = 0; j < m; ++j) {
    // Evenly spaced ranks from the first to the last sample.
    const std::size_t r = m == 1 ? 0 : (j * (n - 1) + (m - 1) / 2) / (m - 1);
    out.points.push_back({v[r], static_cast<double>(r + 1) / static_cast<double>(n)});
  }
  return out;
}

LineChart cdfChart(std::string title, std::string x_title, std::vector<Series> series) {
  return LineChart{.title = std::move(title),
                   .x = {.title = std::move(x_title), .format = Format::kLatency},
                   .y = {.title = "share of requests ≤ x", .format = Format::kPercent},
                   .series = std::move(series),
                   .step = true};
}

double bucketWidth(double span, int target) {
  if (!std::isfinite(span) || span <= 0) return 1;
  return timeTicks(0, std::min(span, kHuge), std::max(target, 1)).step;
}

Series rateSeries(std::string name, std::span<const Point> events, double bucket_s, double end) {
  constexpr double kMaxBuckets = 1e6;
  Series out{std::move(name), {}, {}};
  if (!(bucket_s > 0) || !std::isfinite(bucket_s)) return out;
  double last = std::isfinite(end) ? std::max(end, 0.0) : 0;
  for (const Point& e : events)
    if (finitePoint(e) && e.x >= 0) last = std::max(last, e.x);
  const double n = std::min(std::floor(last / bucket_s) + 1, kMaxBuckets);
  std::vector<double> sums(static_cast<std::size_t>(n), 0.0);
  for (const Point& e : events) {
    if (!finitePoint(e) || e.x < 0) continue;
    const double k = std::floor(e.x / bucket_s);
    if (k < n) sums[static_cast<std::size_t>(k)] += std::clamp(e.y, -kHuge, kHuge);
  }
  for (std::size_t k = 0; k < sums.size(); ++k)
    out.points.push_back({(static_cast<double>(k) + 0.5) * bucket_s, sums[k] / bucket_s});
  return out;
}

Series quantileSeries(std::string name, std::span<const Point> samples, double bucket_s, double q) {
  Series out{std::move(name), {}, {}};
  if (!(bucket_s > 0) || !std::isfinite(bucket_s)) return out;
  std::map<double, std::vector<double>> buckets;  // by bucket index (a double: any range fits)
  for (const Point& s : samples)
    if (finitePoint(s)) buckets[std::floor(s.x / bucket_s)].push_back(s.y);
  for (auto& [k, v] : buckets) {
    std::sort(v.begin(), v.end());
    out.points.push_back({(k + 0.5) * bucket_s, quantile(v, std::clamp(q, 0.0, 1.0))});
  }
  return out;
}

std::vector<std::size_t> paretoFrontier(std::span<const ScatterPoint> points,
                                        bool higher_y_is_better) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (std::isfinite(points[i].x) && std::isfinite(points[i].y)) order.push_back(i);
  }
  const auto better = [&](double a, double b) { return higher_y_is_better ? a > b : a < b; };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (points[a].x != points[b].x) return points[a].x < points[b].x;
    return better(points[a].y, points[b].y);
  });
  std::vector<std::size_t> out;
  for (const std::size_t i : order) {
    // Sorted by x, a point is on the frontier when its y beats every cheaper point's.
    if (out.empty() || better(points[i].y, points[out.back()].y)) out.push_back(i);
  }
  return out;
}

std::string renderScatterChart(const ScatterChart& chart) {
  const int width = sanitizeWidth(chart.width), height = sanitizeHeight(chart.height);
  std::vector<std::size_t> shown;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  bool any_ok = false, any_not_ok = false;
  for (std::size_t i = 0; i < chart.points.size(); ++i) {
    const ScatterPoint& sp = chart.points[i];
    if (!std::isfinite(sp.x) || !std::isfinite(sp.y)) continue;
    shown.push_back(i);
    x_lo = std::min(x_lo, std::clamp(sp.x, -kHuge, kHuge));
    x_hi = std::max(x_hi, std::clamp(sp.x, -kHuge, kHuge));
    y_lo = std::min(y_lo, std::clamp(sp.y, -kHuge, kHuge));
    y_hi = std::max(y_hi, std::clamp(sp.y, -kHuge, kHuge));
    (sp.ok ? any_ok : any_not_ok) = true;
  }
  if (shown.empty()) return noDataChart(chart.title, width, height);
  for (const ReferenceLine& r : chart.references) {
    if (std::isfinite(r.y)) {
      y_lo = std::min(y_lo, std::clamp(r.y, -kHuge, kHuge));
      y_hi = std::max(y_hi, std::clamp(r.y, -kHuge, kHuge));
    }
  }
  widenToAxis(chart.x, x_lo, x_hi);
  widenToAxis(chart.y, y_lo, y_hi);
  // A margin so that no mark sits on an axis.
  const double x_pad = (x_hi - x_lo) * 0.04, y_pad = (y_hi - y_lo) * 0.04;
  x_lo = chart.x.from_zero ? std::min(x_lo, 0.0) : x_lo - x_pad;
  y_lo = chart.y.from_zero ? std::min(y_lo, 0.0) : y_lo - y_pad;
  x_hi += x_pad;
  // Attainment cannot exceed 100%: no padding past it.
  y_hi =
      chart.y.format == Format::kPercent && y_hi <= 1 ? std::min(y_hi + y_pad, 1.0) : y_hi + y_pad;

  std::vector<std::size_t> frontier;
  for (const std::size_t i : chart.frontier) {
    if (i < chart.points.size() && std::isfinite(chart.points[i].x) &&
        std::isfinite(chart.points[i].y)) {
      frontier.push_back(i);
    }
  }
  std::sort(frontier.begin(), frontier.end(),
            [&](std::size_t a, std::size_t b) { return chart.points[a].x < chart.points[b].x; });

  std::vector<LegendEntry> legend;
  if (any_ok) legend.push_back({chart.ok_label, kOkColor, Glyph::kDot});
  if (any_not_ok) legend.push_back({chart.not_ok_label, kNotOkColor, Glyph::kCross});
  if (frontier.size() > 1) legend.push_back({chart.frontier_label, kFrontierColor, Glyph::kLine});
  Canvas c =
      beginChart(chart.title, width, height, legend, chart.x, ticksFor(chart.x.format, x_lo, x_hi),
                 chart.y, ticksFor(chart.y.format, y_lo, y_hi));
  const Plot& p = c.plot;
  drawReferences(c, chart.references);

  if (frontier.size() > 1) {
    std::vector<Point> line;
    for (const std::size_t i : frontier) line.push_back({chart.points[i].x, chart.points[i].y});
    c.out += "<path d=\"" + pathData(p, line, false) + "\" fill=\"none\" stroke=\"" +
             std::string(kFrontierColor) + "\" stroke-width=\"1.5\"/>\n";
  }
  // Highlighted points last, so their rings and labels are on top.
  std::stable_partition(shown.begin(), shown.end(),
                        [&](std::size_t i) { return !chart.points[i].highlighted; });
  for (const std::size_t i : shown) {
    const ScatterPoint& sp = chart.points[i];
    const double x = p.px(sp.x), y = p.py(sp.y);
    const std::string tooltip = "<title>" + escapeXml(sp.label) + "</title>";
    if (sp.ok) {
      c.out += "<circle cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"4.5\" fill=\"" +
               std::string(kOkColor) + "\">" + tooltip + "</circle>\n";
    } else {
      c.out += "<path d=\"M" + px(x - 4) + " " + px(y - 4) + "l8 8m0 -8l-8 8\" stroke=\"" +
               std::string(kNotOkColor) + "\" stroke-width=\"2\">" + tooltip + "</path>\n";
    }
    if (!sp.highlighted) continue;
    c.out += "<circle cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"9\" fill=\"none\" stroke=\"" +
             std::string(kInk) + "\" stroke-width=\"2\"/>\n";
    if (sp.label.empty()) continue;
    // Above right of the point, moved left or below where that would leave the plot.
    const bool left = x + 12 + textWidth(sp.label) > p.right;
    const bool below = y - 12 < p.top + 12;
    c.out += "<text x=\"" + px(left ? x - 12 : x + 12) + "\" y=\"" + px(below ? y + 22 : y - 12) +
             "\" text-anchor=\"" + (left ? "end" : "start") + "\" font-weight=\"bold\" fill=\"" +
             std::string(kInk) +
             "\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">" +
             escapeXml(sp.label) + "</text>\n";
  }
  return finishChart(c);
}

std::string formatNumber(double v, const char* printf_format) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

bool looksNumeric(std::string_view cell) {
  while (!cell.empty() && cell.front() == ' ') cell.remove_prefix(1);
  while (!cell.empty() && cell.back() == ' ') cell.remove_suffix(1);
  for (const std::string_view prefix : {"+", "-", "\u2212", "$", "\u20ac", "\u00a3"}) {
    if (cell.starts_with(prefix)) cell.remove_prefix(prefix.size());
  }
  if (cell.empty() || !std::isdigit(static_cast<unsigned char>(cell.front()))) return false;
  // The number then units ("ms", "%", "tok/s", "1h30m"): no word of text after it.
  int letters = 0, spaces = 0;
  for (const char c : cell) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      ++letters;
    } else if (c == ' ') {
      ++spaces;
    } else if (!std::isdigit(u) && c != '.' && c != ',' && c != '%' && c != '/') {
      return false;
    }
  }
  return letters <= 6 && spaces <= 1;
}

Document::Document(std::string title) : title_(std::move(title)) {}

void Document::heading(std::string_view text, int level) {
  const std::string h = "h" + std::to_string(std::clamp(level, 2, 4));
  body_ += "<" + h + ">" + escapeXml(text) + "</" + h + ">\n";
}

void Document::paragraph(std::string_view text) { body_ += "<p>" + escapeXml(text) + "</p>\n"; }

void Document::summary(const Summary& rows) {
  body_ += "<table class=\"summary\">\n<tbody>\n";
  for (const auto& [key, value] : rows) {
    body_ += "<tr><th scope=\"row\">" + escapeXml(key) + "</th><td" +
             (looksNumeric(value) ? " class=\"num\"" : "") + ">" + escapeXml(value) +
             "</td></tr>\n";
  }
  body_ += "</tbody>\n</table>\n";
}

void Document::table(const Table& table) {
  std::size_t columns = table.header.size();
  for (const auto& row : table.rows) columns = std::max(columns, row.size());
  // A column is numeric when every non-empty cell is (and there is one).
  std::vector<bool> numeric(columns, false);
  for (std::size_t c = 0; c < columns; ++c) {
    bool any = false, all = true;
    for (const auto& row : table.rows) {
      if (c >= row.size() || row[c].empty()) continue;
      any = true;
      all = all && looksNumeric(row[c]);
    }
    numeric[c] = any && all;
  }
  const auto cell = [&](std::string_view tag, std::size_t c, std::string_view text) {
    return "<" + std::string(tag) + (numeric[c] ? " class=\"num\"" : "") + ">" + escapeXml(text) +
           "</" + std::string(tag) + ">";
  };
  body_ += "<table>\n";
  if (!table.header.empty()) {
    body_ += "<thead><tr>";
    for (std::size_t c = 0; c < columns; ++c) {
      body_ += cell("th", c, c < table.header.size() ? table.header[c] : "");
    }
    body_ += "</tr></thead>\n";
  }
  body_ += "<tbody>\n";
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    body_ += table.highlighted_row == r ? "<tr class=\"highlight\">" : "<tr>";
    for (std::size_t c = 0; c < columns; ++c) {
      body_ += cell("td", c, c < table.rows[r].size() ? table.rows[r][c] : "");
    }
    body_ += "</tr>\n";
  }
  body_ += "</tbody>\n</table>\n";
}

void Document::chart(std::string_view svg, std::string_view caption) {
  body_ += "<figure>\n";
  body_ += svg;
  if (!caption.empty()) body_ += "<figcaption>" + escapeXml(caption) + "</figcaption>\n";
  body_ += "</figure>\n";
}

std::string Document::html() const {
  // One palette and one stylesheet for every report; print keeps figures and tables whole and
  // the highlighted row visible.
  static constexpr std::string_view kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: #222222; max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #dddddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
thead th { background: #f4f4f4; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { font-weight: normal; color: #555555; }
tr.highlight td { background: #fbe9c6; font-weight: 600; }
figure { margin: 1.2em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555555; font-size: 0.9em; }
@media print {
  body { max-width: none; margin: 0; }
  h2, h3 { break-after: avoid; }
  figure, table { break-inside: avoid; }
  tr.highlight td { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
)";
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>" +
         escapeXml(title_) + "</title>\n<style>" + std::string(kStyle) +
         "</style>\n</head>\n<body>\n";
  out += "<h1>" + escapeXml(title_) + "</h1>\n";
  out += body_;
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace tidegate::report

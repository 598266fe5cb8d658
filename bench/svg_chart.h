// A small SVG line chart for bench/RESULTS.md: panels side by side, each with a categorical x axis
// (e.g. request rates "1", "4", "inf"), a linear y axis from 0, and one polyline per series.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

struct ChartSeries {
  std::string name;
  std::vector<double> y;  // one value per x label; NaN = no point
};

struct ChartPanel {
  std::string title, x_label, y_label;
  std::vector<std::string> x_labels;
  std::vector<ChartSeries> series;
};

namespace svg_detail {

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// A "nice" upper bound for the axis: 1, 2 or 5 times a power of ten, at least `v`.
inline double nice_ceiling(double v) {
  if (!(v > 0)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};

// One panel at horizontal offset x0, of size w x h.
inline std::string panel(const ChartPanel& p, double x0, double w, double h) {
  const double left = x0 + 70, right = x0 + w - 20, top = 40, bottom = h - 60;
  double ymax = 0;
  for (const auto& s : p.series) {
    for (double v : s.y) {
      if (std::isfinite(v)) ymax = std::max(ymax, v);
    }
  }
  ymax = nice_ceiling(ymax);
  const size_t n = p.x_labels.size();
  auto x_at = [&](size_t i) {
    return n <= 1 ? (left + right) / 2 : left + (right - left) * double(i) / double(n - 1);
  };
  auto y_at = [&](double v) { return bottom - (bottom - top) * v / ymax; };
  std::string o;
  o += "<text x=\"" + fmt("%.0f", (left + right) / 2) +
       "\" y=\"22\" text-anchor=\"middle\" font-weight=\"bold\">" + escape(p.title) + "</text>\n";
  o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", bottom) + "\" x2=\"" +
       fmt("%.1f", right) + "\" y2=\"" + fmt("%.1f", bottom) + "\" stroke=\"black\"/>\n";
  o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" +
       fmt("%.1f", left) + "\" y2=\"" + fmt("%.1f", bottom) + "\" stroke=\"black\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = ymax * t / 4, y = y_at(v);
    o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" +
         fmt("%.1f", right) + "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#ddd\"/>\n";
    o += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", y + 4) +
         "\" text-anchor=\"end\">" + fmt(ymax >= 10 ? "%.0f" : "%.2g", v) + "</text>\n";
  }
  for (size_t i = 0; i < n; ++i) {
    o += "<text x=\"" + fmt("%.1f", x_at(i)) + "\" y=\"" + fmt("%.1f", bottom + 18) +
         "\" text-anchor=\"middle\">" + escape(p.x_labels[i]) + "</text>\n";
  }
  o += "<text x=\"" + fmt("%.0f", (left + right) / 2) + "\" y=\"" + fmt("%.0f", h - 22) +
       "\" text-anchor=\"middle\">" + escape(p.x_label) + "</text>\n";
  o += "<text transform=\"translate(" + fmt("%.0f", x0 + 16) + "," +
       fmt("%.0f", (top + bottom) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       escape(p.y_label) + "</text>\n";
  for (size_t k = 0; k < p.series.size(); ++k) {
    const auto& s = p.series[k];
    const char* color = kColors[k % 5];
    std::string pts;
    for (size_t i = 0; i < std::min(n, s.y.size()); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      pts += fmt("%.1f", x_at(i)) + "," + fmt("%.1f", y_at(s.y[i])) + " ";
      o += "<circle cx=\"" + fmt("%.1f", x_at(i)) + "\" cy=\"" + fmt("%.1f", y_at(s.y[i])) +
           "\" r=\"3\" fill=\"" + color + "\"/>\n";
    }
    o += "<polyline fill=\"none\" stroke=\"" + std::string(color) +
         "\" stroke-width=\"2\" points=\"" + pts + "\"/>\n";
    const double ly = top + 16.0 * double(k);
    o += "<rect x=\"" + fmt("%.1f", left + 10) + "\" y=\"" + fmt("%.1f", ly - 9) +
         "\" width=\"12\" height=\"3\" fill=\"" + color + "\"/>\n";
    o += "<text x=\"" + fmt("%.1f", left + 28) + "\" y=\"" + fmt("%.1f", ly - 4) + "\">" +
         escape(s.name) + "</text>\n";
  }
  return o;
}

}  // namespace svg_detail

// The SVG document of `panels` laid out in one row; `caption` goes under them.
inline std::string line_chart_svg(const std::vector<ChartPanel>& panels,
                                  const std::string& caption) {
  const double w = 460, h = 320;
  const double total_w = w * double(panels.size());
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                  svg_detail::fmt("%.0f", total_w) + "\" height=\"" +
                  svg_detail::fmt("%.0f", h + 24) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" "
                  "height=\"100%\" fill=\"white\"/>\n";
  for (size_t i = 0; i < panels.size(); ++i) o += svg_detail::panel(panels[i], w * double(i), w, h);
  o += "<text x=\"10\" y=\"" + svg_detail::fmt("%.0f", h + 14) +
       "\" font-size=\"11\" fill=\"#555\">" + svg_detail::escape(caption) + "</text>\n</svg>\n";
  return o;
}

}  // namespace bench

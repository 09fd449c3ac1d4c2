#include "svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "transport_registry.hpp"

namespace shmq::bench {
namespace {

constexpr double kWidth = 960;
constexpr double kHeight = 560;  // plus a line per transport that did not run
constexpr double kNoteLine = 17;
constexpr double kLeft = 90;     // room for the y axis labels
constexpr double kRight = 770;   // the legend sits to the right of this
constexpr double kTop = 80;      // room for the title
constexpr double kBottom = 470;  // the x axis; labels and notes below
constexpr std::size_t kMaxNoteChars = 110;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
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
      default:
        out += c;
    }
  }
  return out;
}

std::string fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", v);
  return text;
}

std::string three_digits(double v, const char* unit) {
  char text[48];
  std::snprintf(text, sizeof(text), "%.3g%s", v, unit);
  return text;
}

std::string format_ns(double ns) {
  if (ns < 1e3) return three_digits(ns, " ns");
  if (ns < 1e6) return three_digits(ns / 1e3, " \u00b5s");
  if (ns < 1e9) return three_digits(ns / 1e6, " ms");
  return three_digits(ns / 1e9, " s");
}

std::string format_rate(double v) {
  if (v >= 1e9) return three_digits(v / 1e9, " G");
  if (v >= 1e6) return three_digits(v / 1e6, " M");
  if (v >= 1e3) return three_digits(v / 1e3, " k");
  return three_digits(v, "");
}

// The same colour for a transport in every chart.
const char* colour_of(const std::string& transport) {
  static const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f", "#17becf"};
  const auto& names = transport_names();
  const auto it = std::find(names.begin(), names.end(), transport);
  const auto index = static_cast<std::size_t>(it - names.begin());
  return kPalette[index % std::size(kPalette)];
}

class Svg {
 public:
  explicit Svg(double height) {
    out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
         << "\" viewBox=\"0 0 " << kWidth << " " << height
         << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
         << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  }
  void line(double x1, double y1, double x2, double y2, const char* stroke, const char* extra = "") {
    out_ << "<line x1=\"" << fixed(x1) << "\" y1=\"" << fixed(y1) << "\" x2=\"" << fixed(x2) << "\" y2=\"" << fixed(y2)
         << "\" stroke=\"" << stroke << "\" " << extra << "/>\n";
  }
  void rect(double x, double y, double w, double h, const char* fill, const std::string& tooltip = {}) {
    out_ << "<rect x=\"" << fixed(x) << "\" y=\"" << fixed(y) << "\" width=\"" << fixed(w) << "\" height=\""
         << fixed(std::max(h, 0.0)) << "\" fill=\"" << fill << "\">";
    if (!tooltip.empty()) out_ << "<title>" << escape(tooltip) << "</title>";
    out_ << "</rect>\n";
  }
  // anchor: start, middle or end; rotate: degrees about (x, y).
  void text(double x, double y, const std::string& s, int size, const char* anchor = "start", int rotate = 0,
            const char* extra = "") {
    out_ << "<text x=\"" << fixed(x) << "\" y=\"" << fixed(y) << "\" font-size=\"" << size << "\" text-anchor=\""
         << anchor << "\"";
    if (rotate != 0) out_ << " transform=\"rotate(" << rotate << " " << fixed(x) << " " << fixed(y) << ")\"";
    out_ << " " << extra << ">" << escape(s) << "</text>\n";
  }
  std::string finish() {
    out_ << "</svg>\n";
    return out_.str();
  }

 private:
  std::ostringstream out_;
};

void draw_header(Svg& svg, const BenchReport& report, const std::string& what) {
  svg.text(kWidth / 2, 30, "shmq-bench: " + what + " \u2014 " + describe_run(report.options), 16, "middle", 0,
           "font-weight=\"bold\"");
  svg.text(kWidth / 2, 54, describe(report.machine), 13, "middle", 0, "fill=\"#444\"");
}

// Transports that ran, with their colours, to the right of the plot.
void draw_legend(Svg& svg, const std::vector<const TransportResult*>& ran) {
  double y = kTop + 10;
  svg.text(kRight + 20, y, "transport", 13, "start", 0, "font-weight=\"bold\"");
  for (const TransportResult* r : ran) {
    y += 24;
    svg.rect(kRight + 20, y - 12, 14, 14, colour_of(r->transport));
    svg.text(kRight + 42, y, r->transport, 13);
  }
}

// The transports that did not run, and why, below the x axis labels.
void draw_notes(Svg& svg, const BenchReport& report) {
  double y = kBottom + 66;
  for (const TransportResult& r : report.results) {
    if (r.status == RunStatus::ok) continue;
    std::string note = r.transport + (r.status == RunStatus::skipped ? " skipped: " : " failed: ") + r.reason;
    if (note.size() > kMaxNoteChars) note = note.substr(0, kMaxNoteChars - 3) + "...";
    svg.text(kLeft, y, note, 12, "start", 0, "fill=\"#a00\"");
    y += kNoteLine;
  }
}

// A log-scale y axis over whole decades, from below the lowest value to
// above the highest with room for a bar's label.
class LogAxis {
 public:
  LogAxis(double lowest, double highest, double headroom)
      : lo_(std::floor(std::log10(std::max(lowest, 1.0)))),
        hi_(std::max(lo_ + 1, std::ceil(std::log10(std::max(highest, 1.0) * headroom)))) {}

  double y_of(double v) const {
    const double l = std::clamp(std::log10(std::max(v, 1.0)), lo_, hi_);
    return kBottom - (l - lo_) / (hi_ - lo_) * (kBottom - kTop);
  }

  // Grid lines at each decade (labelled) and at 2 and 5 times it.
  void draw(Svg& svg, std::string (*format)(double), const std::string& title) const {
    for (double d = lo_; d <= hi_; d += 1) {
      const double decade = std::pow(10.0, d);
      svg.line(kLeft, y_of(decade), kRight, y_of(decade), "#bbbbbb");
      svg.text(kLeft - 8, y_of(decade) + 4, format(decade), 12, "end");
      if (d == hi_) break;
      for (double m : {2.0, 5.0}) {
        svg.line(kLeft, y_of(decade * m), kRight, y_of(decade * m), "#e4e4e4");
        // Few decades: label these too, so that the axis can be read.
        if (hi_ - lo_ <= 3)
          svg.text(kLeft - 8, y_of(decade * m) + 4, format(decade * m), 10, "end", 0, "fill=\"#777\"");
      }
    }
    svg.text(24, (kTop + kBottom) / 2, title, 13, "middle", -90);
  }

 private:
  double lo_;  // log10 of the axis's bottom
  double hi_;  // log10 of its top
};

void draw_latency(Svg& svg, const BenchReport& report, const std::vector<const TransportResult*>& ran) {
  struct Percentile {
    const char* label;
    double LatencySummary::*field;
  };
  static const Percentile kPercentiles[] = {{"p50", &LatencySummary::p50_ns},
                                            {"p90", &LatencySummary::p90_ns},
                                            {"p99", &LatencySummary::p99_ns},
                                            {"p99.9", &LatencySummary::p999_ns},
                                            {"max", &LatencySummary::max_ns}};
  double lowest = 1e18;
  double highest = 1;
  for (const TransportResult* r : ran) {
    for (const Percentile& p : kPercentiles) {
      lowest = std::min(lowest, r->latency.*p.field);
      highest = std::max(highest, r->latency.*p.field);
    }
  }
  const LogAxis axis(lowest, highest, 5);
  axis.draw(svg, format_ns, "round-trip latency (log scale, lower is better)");

  const double group = (kRight - kLeft) / std::size(kPercentiles);
  const double bar = std::min(28.0, group * 0.8 / static_cast<double>(ran.size()));
  for (std::size_t g = 0; g < std::size(kPercentiles); ++g) {
    const double left = kLeft + group * static_cast<double>(g) + (group - bar * static_cast<double>(ran.size())) / 2;
    for (std::size_t i = 0; i < ran.size(); ++i) {
      const double ns = ran[i]->latency.*kPercentiles[g].field;
      const double x = left + bar * static_cast<double>(i);
      svg.rect(x, axis.y_of(ns), bar - 2, kBottom - axis.y_of(ns), colour_of(ran[i]->transport),
               ran[i]->transport + " " + kPercentiles[g].label + ": " + format_ns(ns));
      svg.text(x + bar / 2 + 3, axis.y_of(ns) - 4, format_ns(ns), 10, "start", -90);
    }
    svg.text(kLeft + group * (static_cast<double>(g) + 0.5), kBottom + 22, kPercentiles[g].label, 14, "middle");
  }
  svg.text((kLeft + kRight) / 2, kBottom + 42,
           "percentile of " + std::to_string(report.options.iterations) + " round trips", 13, "middle");
}

void draw_throughput(Svg& svg, const BenchReport& report, const std::vector<const TransportResult*>& ran) {
  double lowest = 1e18;
  double highest = 1;
  for (const TransportResult* r : ran) {
    lowest = std::min(lowest, r->stream.messages_per_s);
    highest = std::max(highest, r->stream.messages_per_s);
  }
  // Log scale: the floor (spsc) may be a hundred times the others.
  const LogAxis axis(lowest, highest, 3);
  axis.draw(svg, format_rate, "messages per second (log scale, higher is better)");
  const double slot = (kRight - kLeft) / static_cast<double>(ran.size());
  const double bar = std::min(90.0, slot * 0.6);
  for (std::size_t i = 0; i < ran.size(); ++i) {
    const StreamSummary& s = ran[i]->stream;
    const double centre = kLeft + slot * (static_cast<double>(i) + 0.5);
    const double top = axis.y_of(s.messages_per_s);
    svg.rect(centre - bar / 2, top, bar, kBottom - top, colour_of(ran[i]->transport),
             ran[i]->transport + ": " + format_rate(s.messages_per_s) + " messages/s");
    svg.text(centre, top - 20, format_rate(s.messages_per_s) + " msg/s", 12, "middle");
    char mb[48];
    std::snprintf(mb, sizeof(mb), "%.1f MB/s", s.mb_per_s);
    svg.text(centre, top - 6, mb, 11, "middle", 0, "fill=\"#555\"");
    svg.text(centre, kBottom + 22, ran[i]->transport, 14, "middle");
  }
  const BenchOptions& o = report.options;
  svg.text((kLeft + kRight) / 2, kBottom + 42,
           std::to_string(o.messages) + " messages, " + std::to_string(o.producers) + " producer(s), " +
               std::to_string(o.consumers) + " consumer(s), receive batch " + std::to_string(o.batch),
           13, "middle");
}

}  // namespace

std::string render_svg(const BenchReport& report) {
  std::vector<const TransportResult*> ran;
  for (const TransportResult& r : report.results) {
    if (r.status == RunStatus::ok) ran.push_back(&r);
  }
  const auto not_run = static_cast<double>(report.results.size() - ran.size());
  Svg svg(kHeight + kNoteLine * not_run);
  const bool pingpong = report.options.workload == Workload::pingpong;
  draw_header(svg, report, pingpong ? "round-trip latency" : "throughput");
  if (ran.empty()) {
    svg.text(kWidth / 2, (kTop + kBottom) / 2, "no transport ran", 16, "middle");
  } else if (pingpong) {
    draw_latency(svg, report, ran);
  } else {
    draw_throughput(svg, report, ran);
  }
  svg.line(kLeft, kTop, kLeft, kBottom, "#888");
  draw_legend(svg, ran);
  draw_notes(svg, report);
  return svg.finish();
}

void write_svg(const BenchReport& report, const std::string& path) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << render_svg(report);
  file.close();
  if (!file) throw std::runtime_error("--plot: cannot write " + path);
}

}  // namespace shmq::bench

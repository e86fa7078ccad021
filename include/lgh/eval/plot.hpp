// Pictures of evaluation results: PCK curves as PNG or SVG (chosen by the
// file's extension), and the learned joint groups drawn on a hand.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/draw.hpp"
#include "lgh/data/hand.hpp"
#include "lgh/io/atomic_file.hpp"

namespace lgh {
namespace eval {

// One curve of a PCK plot: PCK (in [0, 1]) at each threshold.
struct PckCurve {
  std::string label;  // e.g. "small, synthetic: AUC 0.912"
  std::vector<double> thresholds, pck;
};

struct PlotOptions {
  std::string x_label = "error threshold (mm)";
  std::string y_label = "3D PCK";
  double y_min = 0;  // 0..1 by default
  int width = 640, height = 480;
};

namespace detail {
inline bool ends_with(const std::string& s, const std::string& e) {
  if (s.size() < e.size()) return false;
  for (size_t i = 0; i < e.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - e.size() + i])) != e[i]) return false;
  return true;
}

inline const data::Rgb& curve_colour(size_t i) {
  static const data::Rgb c[] = {{220, 50, 40}, {40, 110, 220}, {40, 170, 70}, {230, 150, 20}, {150, 70, 200}, {90, 90, 90}};
  return c[i % 6];
}

inline std::string fmt(double v, int decimals) {
  char b[32];
  if (std::fabs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0;  // no "-0.0"
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

struct Frame {
  double x0, x1, y0, y1;  // data range
  int left, right, top, bottom;  // plot area in pixels
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

inline Frame make_frame(const std::vector<PckCurve>& curves, const PlotOptions& o) {
  LGH_CHECK(!curves.empty(), "PCK plot: no curves");
  Frame f{1e300, -1e300, o.y_min, 1.0, 70, o.width - 20, 40, o.height - 60};
  for (const PckCurve& c : curves) {
    LGH_CHECK(c.thresholds.size() == c.pck.size() && c.thresholds.size() >= 2,
              "PCK plot: curve '" << c.label << "' needs as many PCK values as thresholds (at least 2)");
    for (double t : c.thresholds) {
      f.x0 = std::min(f.x0, t);
      f.x1 = std::max(f.x1, t);
    }
  }
  LGH_CHECK(f.x1 > f.x0, "PCK plot: the thresholds span no range");
  return f;
}

// Grid step giving about 5-10 lines over `range`.
inline double nice_step(double range) {
  const double raw = range / 6, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

// Upper case, and characters the bitmap font lacks (brackets, commas, ...)
// turned into spaces.
inline std::string upper(std::string s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool drawable = std::isalnum(u) || c == ' ' || c == '-' || c == '.' || c == ':' || c == '/' || c == '_' || c == '=';
    const char d = drawable ? static_cast<char>(std::toupper(u)) : ' ';
    if (d == ' ' && !out.empty() && out.back() == ' ') continue;
    out += d;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

inline data::Image render_png(const std::vector<PckCurve>& curves, const PlotOptions& o) {
  const Frame f = make_frame(curves, o);
  data::Image img(o.width, o.height, 3, 255);
  const data::Rgb grid{225, 225, 225}, axis{60, 60, 60}, text{30, 30, 30};
  const double xs = nice_step(f.x1 - f.x0), ys = nice_step(f.y1 - f.y0);
  for (double x = std::ceil(f.x0 / xs) * xs; x <= f.x1 + 1e-9; x += xs) {
    data::draw_line(img, f.px(x), f.top, f.px(x), f.bottom, grid, 1);
    const std::string s = fmt(x, xs < 1 ? 1 : 0);
    data::draw_text(img, static_cast<int>(f.px(x)) - data::text_size(s, 2)[0] / 2, f.bottom + 8, s, text, 2, false);
  }
  for (double y = std::ceil(f.y0 / ys - 1e-9) * ys; y <= f.y1 + 1e-9; y += ys) {
    data::draw_line(img, f.left, f.py(y), f.right, f.py(y), grid, 1);
    const std::string s = fmt(y, 1);
    data::draw_text(img, f.left - 8 - data::text_size(s, 2)[0], static_cast<int>(f.py(y)) - 7, s, text, 2, false);
  }
  data::draw_rect(img, f.left, f.top, f.right, f.bottom, axis, 1.5);
  const std::string xl = upper(o.x_label);
  data::draw_text(img, (f.left + f.right - data::text_size(xl, 2)[0]) / 2, o.height - 26, xl, text, 2, false);
  data::draw_text(img, 6, 10, upper(o.y_label), text, 2, false);
  for (size_t i = 0; i < curves.size(); ++i) {
    const PckCurve& c = curves[i];
    for (size_t k = 0; k + 1 < c.thresholds.size(); ++k)
      data::draw_line(img, f.px(c.thresholds[k]), f.py(c.pck[k]), f.px(c.thresholds[k + 1]), f.py(c.pck[k + 1]),
                      curve_colour(i), 2.5);
    for (size_t k = 0; k < c.thresholds.size(); ++k) data::draw_disc(img, f.px(c.thresholds[k]), f.py(c.pck[k]), 3, curve_colour(i));
  }
  // Legend, bottom right on a white box, one line per curve.
  for (size_t i = 0; i < curves.size(); ++i) {
    const std::string l = upper(curves[i].label);
    const int lx = f.right - 12 - data::text_size(l, 2)[0], ly = f.bottom - 22 - 20 * static_cast<int>(curves.size() - 1 - i);
    for (int y = std::max(ly - 4, f.top + 2); y < ly + 18; ++y)
      for (int x = std::max(lx - 34, f.left + 2); x < f.right - 4; ++x) std::fill(img.at(x, y), img.at(x, y) + 3, uint8_t(255));
    data::draw_line(img, lx - 28, ly + 7, lx - 8, ly + 7, curve_colour(i), 3);
    data::draw_text(img, lx, ly, l, text, 2, false);
  }
  return img;
}

inline std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

inline std::string render_svg(const std::vector<PckCurve>& curves, const PlotOptions& o) {
  const Frame f = make_frame(curves, o);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width << "\" height=\"" << o.height
    << "\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const double xs = nice_step(f.x1 - f.x0), ys = nice_step(f.y1 - f.y0);
  for (double x = std::ceil(f.x0 / xs) * xs; x <= f.x1 + 1e-9; x += xs)
    s << "<line x1=\"" << f.px(x) << "\" y1=\"" << f.top << "\" x2=\"" << f.px(x) << "\" y2=\"" << f.bottom
      << "\" stroke=\"#e1e1e1\"/><text x=\"" << f.px(x) << "\" y=\"" << f.bottom + 18 << "\" text-anchor=\"middle\">"
      << fmt(x, xs < 1 ? 1 : 0) << "</text>\n";
  for (double y = std::ceil(f.y0 / ys - 1e-9) * ys; y <= f.y1 + 1e-9; y += ys)
    s << "<line x1=\"" << f.left << "\" y1=\"" << f.py(y) << "\" x2=\"" << f.right << "\" y2=\"" << f.py(y)
      << "\" stroke=\"#e1e1e1\"/><text x=\"" << f.left - 6 << "\" y=\"" << f.py(y) + 4 << "\" text-anchor=\"end\">"
      << fmt(y, 1) << "</text>\n";
  s << "<rect x=\"" << f.left << "\" y=\"" << f.top << "\" width=\"" << f.right - f.left << "\" height=\""
    << f.bottom - f.top << "\" fill=\"none\" stroke=\"#3c3c3c\"/>\n";
  s << "<text x=\"" << (f.left + f.right) / 2 << "\" y=\"" << o.height - 14 << "\" text-anchor=\"middle\">"
    << xml_escape(o.x_label) << "</text>\n";
  s << "<text transform=\"translate(16," << (f.top + f.bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << xml_escape(o.y_label) << "</text>\n";
  for (size_t i = 0; i < curves.size(); ++i) {
    const PckCurve& c = curves[i];
    const data::Rgb& col = curve_colour(i);
    char hex[8];
    std::snprintf(hex, sizeof hex, "#%02x%02x%02x", col.r, col.g, col.b);
    s << "<polyline fill=\"none\" stroke=\"" << hex << "\" stroke-width=\"2.5\" points=\"";
    for (size_t k = 0; k < c.thresholds.size(); ++k) s << f.px(c.thresholds[k]) << "," << f.py(c.pck[k]) << " ";
    s << "\"/>\n";
    for (size_t k = 0; k < c.thresholds.size(); ++k)
      s << "<circle cx=\"" << f.px(c.thresholds[k]) << "\" cy=\"" << f.py(c.pck[k]) << "\" r=\"3\" fill=\"" << hex << "\"/>\n";
    const int ly = f.bottom - 14 - 18 * static_cast<int>(curves.size() - 1 - i);
    s << "<line x1=\"" << f.right - 260 << "\" y1=\"" << ly - 4 << "\" x2=\"" << f.right - 240 << "\" y2=\"" << ly - 4
      << "\" stroke=\"" << hex << "\" stroke-width=\"3\"/><text x=\"" << f.right - 234 << "\" y=\"" << ly << "\">"
      << xml_escape(c.label) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}
}  // namespace detail

// Writes the curves to `path`, as PNG (".png") or SVG (".svg"), atomically.
inline void write_pck_plot(const std::string& path, const std::vector<PckCurve>& curves, const PlotOptions& options = {}) {
  if (detail::ends_with(path, ".svg")) {
    const std::string svg = detail::render_svg(curves, options);
    io::write_file_atomic(path, svg);
  } else if (detail::ends_with(path, ".png")) {
    data::write_image(path, detail::render_png(curves, options));
  } else {
    LGH_FAIL("plot '" << path << "': the file name must end in .png or .svg");
  }
}

// ---- the learned joint groups ---------------------------------------------------------

// A right hand seen from its back, fingers spread (thumb on the left), in a
// 256x256 frame: the reference pose the groups are drawn on.
inline std::array<std::array<double, 2>, data::kNumJoints> reference_hand_pose() {
  std::array<std::array<double, 2>, data::kNumJoints> p{};
  p[0] = {128, 236};
  // Per finger: direction (degrees from straight up, positive towards the
  // thumb side = left on screen for a right palm) and bone lengths base->tip.
  const double angle[5] = {58, 18, 2, -14, -30};
  const double base_len[5] = {48, 90, 92, 88, 82};
  const double len[5][3] = {{36, 26, 22}, {40, 24, 20}, {44, 27, 22}, {41, 26, 21}, {32, 20, 19}};
  const double pi = 3.14159265358979323846;
  for (int f = 0; f < 5; ++f) {
    const double a = angle[f] * pi / 180, b = (f == 0 ? 40.0 : angle[f] * 1.3) * pi / 180;
    double x = p[0][0] - base_len[f] * std::sin(b), y = p[0][1] - base_len[f] * std::cos(b);
    p[data::joint_index(f, 3)] = {x, y};
    for (int k = 0; k < 3; ++k) {
      x -= len[f][k] * std::sin(a);
      y -= len[f][k] * std::cos(a);
      p[data::joint_index(f, 2 - k)] = {x, y};
    }
  }
  return p;
}

inline data::Rgb group_colour(int k) {
  // The paper's Figure 4 draws three groups in red, green and blue.
  static const data::Rgb c[] = {{220, 40, 40}, {40, 170, 60}, {40, 90, 230}, {230, 160, 20}, {160, 60, 210},
                                {20, 170, 170}, {120, 120, 120}};
  return c[static_cast<size_t>(k) % 7];
}

// The hand with every joint in the colour of its group (`group[j]` in
// [0, K)), a legend of the groups below it.
inline data::Image draw_joint_groups(const std::vector<int>& group, int num_groups, const std::string& title = "") {
  LGH_CHECK(static_cast<int>(group.size()) == data::kNumJoints,
            "draw_joint_groups: expected " << data::kNumJoints << " joints, got " << group.size());
  const auto pose = reference_hand_pose();
  data::Image img(256, 300, 3, 255);
  for (int j = 1; j < data::kNumJoints; ++j) {
    const int p = data::kParent[j];
    data::draw_line(img, pose[p][0], pose[p][1], pose[j][0], pose[j][1], data::Rgb{150, 150, 150}, 3);
  }
  for (int j = 0; j < data::kNumJoints; ++j) {
    LGH_CHECK(group[static_cast<size_t>(j)] >= 0 && group[static_cast<size_t>(j)] < num_groups,
              "draw_joint_groups: joint " << j << " is in group " << group[static_cast<size_t>(j)] << ", expected [0, "
                                          << num_groups << ")");
    data::draw_disc(img, pose[j][0], pose[j][1], 8, data::Rgb{30, 30, 30});
    data::draw_disc(img, pose[j][0], pose[j][1], 6.5, group_colour(group[static_cast<size_t>(j)]));
  }
  int x = 8;
  for (int k = 0; k < num_groups; ++k) {
    data::draw_disc(img, x + 6, 283, 6, group_colour(k));
    data::draw_text(img, x + 16, 280, "G" + std::to_string(k + 1), data::Rgb{30, 30, 30}, 1, false);
    x += 40;
  }
  if (!title.empty()) data::draw_text(img, 6, 6, detail::upper(title), data::Rgb{30, 30, 30}, 1, false);
  return img;
}

// The groups as text: one line per group listing its joints by name.
inline std::string joint_groups_text(const std::vector<int>& group, int num_groups) {
  std::ostringstream s;
  for (int k = 0; k < num_groups; ++k) {
    s << "group " << k + 1 << ":";
    for (int j = 0; j < static_cast<int>(group.size()); ++j)
      if (group[static_cast<size_t>(j)] == k) s << " " << data::joint_name(j);
    s << "\n";
  }
  return s.str();
}

}  // namespace eval
}  // namespace lgh

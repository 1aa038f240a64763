#include "cli/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "emix/errors.hpp"

#if EMIX_HAS_CAIRO
#include <cairo.h>
#include <dlfcn.h>
#endif

namespace emix::cli {

#if !EMIX_HAS_CAIRO

void require_plot() {
  throw NotAvailable(
      "--plot: this build of emix has no PNG plotting: install cairo's development files "
      "(Debian: libcairo2-dev) and rebuild emix");
}

void write_criteria_plot(io::OutputFile&, const SelectReport&, Family, int, int) { require_plot(); }

#else

namespace {

// cairo's functions this file calls, loaded from libcairo when a plot is first drawn rather than
// linked, so that a machine without cairo runs every other command.
// clang-format off
#define EMIX_CAIRO_FUNCTIONS(X)                                                                   \
  X(arc) X(create) X(destroy) X(fill) X(image_surface_create) X(line_to) X(move_to) X(paint)      \
  X(rectangle) X(select_font_face) X(set_dash) X(set_font_size) X(set_line_width)                 \
  X(set_source_rgb) X(show_text) X(status_to_string) X(stroke) X(surface_destroy)                 \
  X(surface_flush) X(surface_write_to_png_stream) X(text_extents)
// clang-format on

struct Cairo {
#define EMIX_CAIRO_POINTER(name) decltype(&::cairo_##name) name = nullptr;
  EMIX_CAIRO_FUNCTIONS(EMIX_CAIRO_POINTER)
#undef EMIX_CAIRO_POINTER
  std::string load_error;  // empty once every function above was found
};

// The soname of cairo 1.x, the one the header compiled in describes.
constexpr const char* kCairoLibrary = "libcairo.so.2";

Cairo load_cairo() {
  Cairo cairo;
  void* library = dlopen(kCairoLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = dlerror();
    cairo.load_error = why ? why : kCairoLibrary;
    return cairo;
  }
#define EMIX_CAIRO_LOAD(name)                                                                \
  if (cairo.load_error.empty()) {                                                            \
    cairo.name = reinterpret_cast<decltype(cairo.name)>(dlsym(library, "cairo_" #name));     \
    if (!cairo.name) cairo.load_error = std::string(kCairoLibrary) + " has no cairo_" #name; \
  }
  EMIX_CAIRO_FUNCTIONS(EMIX_CAIRO_LOAD)
#undef EMIX_CAIRO_LOAD
  return cairo;  // the library stays loaded for the rest of the program
}

const Cairo& cairo_library() {
  static const Cairo cairo = load_cairo();
  return cairo;
}

}  // namespace

void require_plot() {
  const std::string& why = cairo_library().load_error;
  if (!why.empty()) {
    throw NotAvailable("--plot: cannot load cairo, which draws the plot (" + why +
                       "): install it (Debian: libcairo2)");
  }
}

namespace {

struct Rgb {
  double r, g, b;
};

Rgb colour_of(Covariance covariance) {
  switch (covariance) {
    case Covariance::kFull:
      return {0.12, 0.47, 0.71};
    case Covariance::kDiag:
      return {1.00, 0.50, 0.05};
    case Covariance::kSpherical:
      return {0.17, 0.63, 0.17};
    case Covariance::kTied:
      return {0.84, 0.15, 0.16};
  }
  return {0, 0, 0};
}

const char* upper_name(Criterion c) {
  return c == Criterion::kBic ? "BIC" : (c == Criterion::kAic ? "AIC" : "ICL");
}

void set_dash(cairo_t* cr, Criterion c) {
  const Cairo& cairo = cairo_library();
  if (c == Criterion::kBic) {
    cairo.set_dash(cr, nullptr, 0, 0);
  } else if (c == Criterion::kAic) {
    const double dash[] = {8.0, 4.0};
    cairo.set_dash(cr, dash, 2, 0);
  } else {
    const double dash[] = {2.0, 3.0};
    cairo.set_dash(cr, dash, 2, 0);
  }
}

// Ticks at a round step (1, 2 or 5 times a power of ten) inside [low, high], about five.
std::vector<double> round_ticks(double low, double high, double* step) {
  const double rough = (high - low) / 5.0;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / power;
  *step = (fraction < 1.5 ? 1.0 : fraction < 3.5 ? 2.0 : fraction < 7.5 ? 5.0 : 10.0) * power;
  std::vector<double> ticks;
  for (double t = std::ceil(low / *step) * *step; t <= high; t += *step) {
    ticks.push_back(std::abs(t) < 1e-9 * *step ? 0.0 : t);
  }
  return ticks;
}

// Every tick of an axis in one format, with the digits its step needs: "88000", "2287.5";
// "1.166e+07" beyond 1e7.
std::string tick_label(double value, double step, double largest) {
  char buffer[48];
  const int step_digit = static_cast<int>(std::floor(std::log10(step)));
  if (largest >= 1e7) {
    const int lead = static_cast<int>(std::floor(std::log10(largest)));
    std::snprintf(buffer, sizeof buffer, "%.*e", std::max(0, lead - step_digit), value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.*f", std::max(0, -step_digit), value);
  }
  return buffer;
}

struct WriteState {
  io::OutputFile* out;
  std::string error;
};

cairo_status_t write_png_bytes(void* closure, const unsigned char* data, unsigned int length) {
  auto* state = static_cast<WriteState*>(closure);
  try {
    state->out->write(data, length);
    return CAIRO_STATUS_SUCCESS;
  } catch (const std::exception& e) {
    state->error = e.what();
    return CAIRO_STATUS_WRITE_ERROR;
  }
}

}  // namespace

void write_criteria_plot(io::OutputFile& out, const SelectReport& report, Family family, int width,
                         int height) {
  require_plot();
  const Cairo& cairo = cairo_library();
  const std::vector<SelectCandidate>& cands = report.candidates;
  std::vector<Covariance> covariances;
  for (const SelectCandidate& c : cands) {
    if (std::find(covariances.begin(), covariances.end(), c.covariance) == covariances.end()) {
      covariances.push_back(c.covariance);
    }
  }
  const Criterion criteria[] = {Criterion::kBic, Criterion::kAic, Criterion::kIcl};
  double k_min = std::numeric_limits<double>::infinity(), k_max = -k_min;
  double y_min = k_min, y_max = -k_min;
  for (const SelectCandidate& c : cands) {
    k_min = std::min(k_min, static_cast<double>(c.n_components));
    k_max = std::max(k_max, static_cast<double>(c.n_components));
    for (Criterion crit : criteria) {
      const double v = c.criterion(crit);
      if (std::isfinite(v)) {
        y_min = std::min(y_min, v);
        y_max = std::max(y_max, v);
      }
    }
  }
  if (!(y_min <= y_max)) y_min = y_max = 0;
  if (y_max - y_min < 1e-12 * std::max(1.0, std::abs(y_max))) {
    y_min -= 1;
    y_max += 1;
  }
  const double pad = 0.05 * (y_max - y_min);
  y_min -= pad;
  y_max += pad;
  if (k_max <= k_min) {
    k_min -= 1;
    k_max += 1;
  }

  cairo_surface_t* surface = cairo.image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t* cr = cairo.create(surface);
  cairo.set_source_rgb(cr, 1, 1, 1);
  cairo.paint(cr);

  const double left = 90, right = 130, top = 40, bottom = 55;
  const double plot_w = std::max(10.0, width - left - right);
  const double plot_h = std::max(10.0, height - top - bottom);
  const auto px = [&](double k) { return left + (k - k_min) / (k_max - k_min) * plot_w; };
  const auto py = [&](double v) { return top + (y_max - v) / (y_max - y_min) * plot_h; };

  cairo.select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo.set_font_size(cr, 12);

  // Axes, grid and ticks.
  cairo.set_line_width(cr, 1);
  cairo.set_source_rgb(cr, 0.85, 0.85, 0.85);
  double tick_step = 0;
  const std::vector<double> ticks = round_ticks(y_min, y_max, &tick_step);
  const double largest = std::max(std::abs(y_min), std::abs(y_max));
  for (double v : ticks) {
    cairo.move_to(cr, left, py(v));
    cairo.line_to(cr, left + plot_w, py(v));
  }
  cairo.stroke(cr);
  cairo.set_source_rgb(cr, 0, 0, 0);
  cairo.rectangle(cr, left, top, plot_w, plot_h);
  cairo.stroke(cr);
  for (double v : ticks) {
    const std::string label = tick_label(v, tick_step, largest);
    cairo_text_extents_t ext;
    cairo.text_extents(cr, label.c_str(), &ext);
    cairo.move_to(cr, left - 6 - ext.width, py(v) + ext.height / 2);
    cairo.show_text(cr, label.c_str());
  }
  std::vector<int> ks;
  for (const SelectCandidate& c : cands) ks.push_back(c.n_components);
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  const std::size_t step = std::max<std::size_t>(1, (ks.size() + 15) / 16);
  for (std::size_t i = 0; i < ks.size(); i += step) {
    const std::string label = std::to_string(ks[i]);
    cairo_text_extents_t ext;
    cairo.text_extents(cr, label.c_str(), &ext);
    const double x = px(ks[i]);
    cairo.move_to(cr, x, top + plot_h);
    cairo.line_to(cr, x, top + plot_h + 4);
    cairo.stroke(cr);
    cairo.move_to(cr, x - ext.width / 2, top + plot_h + 18);
    cairo.show_text(cr, label.c_str());
  }
  {
    const char* xlabel = "number of components K";
    cairo_text_extents_t ext;
    cairo.text_extents(cr, xlabel, &ext);
    cairo.move_to(cr, left + plot_w / 2 - ext.width / 2, top + plot_h + 40);
    cairo.show_text(cr, xlabel);
    const std::string title = std::string("criteria against K (lower is better; best by ") +
                              upper_name(report.criterion) + " ringed)";
    cairo.move_to(cr, left, top - 14);
    cairo.show_text(cr, title.c_str());
  }

  // One line per covariance type and criterion.
  cairo.set_line_width(cr, 2);
  for (Covariance cov : covariances) {
    const Rgb rgb = colour_of(cov);
    for (Criterion crit : criteria) {
      // Every K of the type, a failed one (or one whose criterion is not finite) as NaN: the
      // line breaks there instead of running across it to the next K, as if between values.
      std::vector<std::pair<int, double> > points;
      for (const SelectCandidate& c : cands) {
        if (c.covariance != cov) continue;
        const double v = c.criterion(crit);
        const bool drawn = !c.failed && std::isfinite(v);
        points.emplace_back(c.n_components, drawn ? v : std::numeric_limits<double>::quiet_NaN());
      }
      std::sort(points.begin(), points.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      cairo.set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
      set_dash(cr, crit);
      bool pen_down = false;
      for (const auto& [k, v] : points) {
        if (std::isnan(v)) {
          pen_down = false;
        } else if (pen_down) {
          cairo.line_to(cr, px(k), py(v));
        } else {
          cairo.move_to(cr, px(k), py(v));
          pen_down = true;
        }
      }
      cairo.stroke(cr);
      points.erase(std::remove_if(points.begin(), points.end(),
                                  [](const auto& p) { return std::isnan(p.second); }),
                   points.end());
      cairo.set_dash(cr, nullptr, 0, 0);
      for (const auto& [k, v] : points) {
        cairo.arc(cr, px(k), py(v), 2.5, 0, 2 * M_PI);
        cairo.fill(cr);
      }
    }
  }
  if (!cands.empty()) {
    const SelectCandidate& best = cands[report.best];
    cairo.set_source_rgb(cr, 0, 0, 0);
    cairo.set_line_width(cr, 1.5);
    cairo.arc(cr, px(best.n_components), py(best.criterion(report.criterion)), 7, 0, 2 * M_PI);
    cairo.stroke(cr);
  }

  // Legend: colour is the covariance type, the dash the criterion.
  double ly = top + 10;
  const double lx = left + plot_w + 12;
  cairo.set_line_width(cr, 2);
  for (Covariance cov : covariances) {
    const Rgb rgb = colour_of(cov);
    for (Criterion crit : criteria) {
      cairo.set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
      set_dash(cr, crit);
      cairo.move_to(cr, lx, ly);
      cairo.line_to(cr, lx + 28, ly);
      cairo.stroke(cr);
      cairo.set_dash(cr, nullptr, 0, 0);
      cairo.set_source_rgb(cr, 0, 0, 0);
      const std::string label = family == Family::kGaussian
                                    ? std::string(to_string(cov)) + " " + upper_name(crit)
                                    : upper_name(crit);
      cairo.move_to(cr, lx + 34, ly + 4);
      cairo.show_text(cr, label.c_str());
      ly += 17;
    }
    ly += 4;
  }

  cairo.destroy(cr);
  cairo.surface_flush(surface);
  WriteState state{&out, {}};
  const cairo_status_t status = cairo.surface_write_to_png_stream(surface, write_png_bytes, &state);
  cairo.surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    // The output's own error names the file already ("--plot out.png: cannot write: ...").
    throw IoError(state.error.empty()
                      ? "--plot " + out.path() + ": " + cairo.status_to_string(status)
                      : state.error);
  }
}

#endif

}  // namespace emix::cli

// The PNG plot of `emix select`: BIC, AIC and ICL against the number of components, one line per
// covariance type and criterion. Drawn with cairo, an optional dependency: a build without it
// refuses --plot before any work (plot_available()).
#pragma once

#include <string>

#include "emix/io.hpp"
#include "emix/select.hpp"

namespace emix::cli {

// False when this build of emix has no cairo.
bool plot_available();
// What to install for --plot, for the message of a build without cairo.
const char* plot_requirement();

// Draws `report`'s criteria as a width x height PNG into `out` (not committed). The best
// candidate (by report.criterion) is ringed. Throws IoError when the PNG cannot be written,
// NotAvailable without cairo.
// family: a Bernoulli or binomial grid has no covariance types, and its legend names none.
void write_criteria_plot(io::OutputFile& out, const SelectReport& report, Family family, int width,
                         int height);

}  // namespace emix::cli

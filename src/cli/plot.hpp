// The PNG plot of `emix select`: BIC, AIC and ICL against the number of components, one line per
// covariance type and criterion. Drawn with cairo, an optional dependency loaded when a plot is
// drawn: a build without its header, or a machine without the library, refuses --plot before
// any work (require_plot()).
#pragma once

#include <string>

#include "emix/io.hpp"
#include "emix/select.hpp"

namespace emix::cli {

// Throws NotAvailable, saying what to install, when this build of emix has no cairo or the
// machine's libcairo cannot be loaded.
void require_plot();

// Draws `report`'s criteria as a width x height PNG into `out` (not committed). The best
// candidate (by report.criterion) is ringed. Throws IoError when the PNG cannot be written,
// NotAvailable without cairo (require_plot()).
// family: a Bernoulli or binomial grid has no covariance types, and its legend names none.
void write_criteria_plot(io::OutputFile& out, const SelectReport& report, Family family, int width,
                         int height);

}  // namespace emix::cli

// emix: mixture models fitted by EM on CPUs and NVIDIA GPUs. The one header to include.
#pragma once

#include "emix/chunks.hpp"
#include "emix/data.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/interrupt.hpp"
#include "emix/io.hpp"
#include "emix/model.hpp"
#include "emix/online.hpp"
#include "emix/options.hpp"
#include "emix/select.hpp"
#include "emix/statistics.hpp"
#include "emix/version.hpp"

"""Warnings that name the caller's line: the first frame outside the emix package, however deep
inside it the warning is raised (fit, fit_predict, select and emix.dask reach the same code at
different depths)."""

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _in_package(frame):
    return os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE


def warn(message, category):
    level = 1  # this function's frame
    frame = sys._getframe(0)
    while frame is not None and _in_package(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)

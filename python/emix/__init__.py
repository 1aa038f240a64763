"""emix: mixture models fitted by EM on CPUs and NVIDIA GPUs, with scikit-learn's API.

Estimators
----------
GaussianMixture     covariance 'full', 'diag', 'spherical' or 'tied' (scikit-learn's)
BernoulliMixture    0/1 vectors
BinomialMixture     counts of successes out of n_trials

Each takes NumPy arrays in place, CUDA arrays from CuPy, PyTorch or JAX in place (the GPU
engine reads them where they are), and anything array-like after one conversion. Models are
saved and read in the emix program's JSON format (``save``, :func:`load_model`).

Beyond scikit-learn
-------------------
Statistics, accumulate, merge_in_order, maximize   EM's sufficient statistics as a public API
chunked             exact EM over data read chunk by chunk (memmap, HDF5, Parquet, iterables)
partial_fit         online (stepwise) EM on the estimators
select              a K x covariance-type grid scored by BIC / AIC / ICL
emix.dask           the estimators on Dask arrays (import emix.dask)

Errors are ``emix.Error`` subclasses that are also the built-in type a caller expects:
``InvalidArgument`` (ValueError), ``IoError`` (OSError, and FileNotFoundError,
PermissionError, ... with ``errno`` and ``filename`` where a system call failed),
``OutOfMemory`` (MemoryError),
``NotAvailable``, ``CudaError`` and ``MpiError`` (RuntimeError), and ``NumericalError``
(RuntimeError and ValueError, which scikit-learn raises for an ill-defined covariance).
"""

from . import _emix
from ._base import FitReport, FitWarning, IterationInfo
from ._discrete import BernoulliMixture, BinomialMixture
from ._emix import (CudaError, Error, InvalidArgument, IoError, MpiError, NotAvailable,
                    NumericalError, OutOfMemory, gpu_available, gpu_built, gpu_count,
                    gpu_unavailable_reason)
from ._emix import (BrokenPipeIoError, FileExistsIoError, FileNotFoundIoError,
                    IsADirectoryIoError, NotADirectoryIoError, PermissionIoError)
from . import _errors  # noqa: F401 - IoError's pickling
from ._gaussian import GaussianMixture
from ._chunks import Chunks, chunked
from ._io import load_model
from ._select import SelectResult, select
from ._statistics import Statistics, accumulate, maximize, merge_in_order

__version__ = _emix.version()

__all__ = [
    "GaussianMixture", "BernoulliMixture", "BinomialMixture", "load_model", "FitReport",
    "IterationInfo", "FitWarning", "Error", "InvalidArgument", "IoError", "FileNotFoundIoError",
    "PermissionIoError", "IsADirectoryIoError", "NotADirectoryIoError", "FileExistsIoError",
    "BrokenPipeIoError", "OutOfMemory",
    "NumericalError", "NotAvailable", "CudaError", "MpiError", "gpu_available", "gpu_built",
    "gpu_count", "gpu_unavailable_reason", "__version__", "Statistics", "accumulate", "maximize", "merge_in_order",
    "chunked", "Chunks", "select", "SelectResult",
]

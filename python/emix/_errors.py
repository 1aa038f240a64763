"""Pickling of emix.IoError and its errno subclasses (FileNotFoundIoError, ...), as errors
raised on a Dask worker or in a multiprocessing child travel: OSError's own reduce rebuilds the
exception from (errno, strerror, filename), whose str() would then be that tuple, not emix's
message."""

from . import _emix


def _rebuild_io_error(kind, args, errno, strerror, filename):
    error = kind(*args)
    error.errno, error.strerror, error.filename = errno, strerror, filename
    return error


def _reduce_io_error(error):
    return (_rebuild_io_error,
            (type(error), error.args, error.errno, error.strerror, error.filename))


_emix.IoError.__reduce__ = _reduce_io_error

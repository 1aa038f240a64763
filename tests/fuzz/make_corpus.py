#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/READER/), small files that
reach each reader's branches: every .npy version, dtype, byte order and layout; CSV and
whitespace text with headers, comments, CRLF, a byte-order mark and special numbers; raw files
(9 option bytes, then data); a model of every family and covariance type. The files are
committed; run this (python3 with NumPy) only to change them."""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def put(reader, name, data):
    folder = os.path.join(HERE, "corpus", reader)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def npy_bytes(array, version=(1, 0)):
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    return buffer.getvalue()


rng = np.random.default_rng(11)
x = rng.normal(size=(5, 3))
put("npy", "f8_v1.npy", npy_bytes(x))
put("npy", "f8_v2.npy", npy_bytes(x, (2, 0)))
put("npy", "f8_v3.npy", npy_bytes(x, (3, 0)))
put("npy", "f4_fortran.npy", npy_bytes(np.asfortranarray(x.astype(np.float32))))
put("npy", "f8_big_endian.npy", npy_bytes(x.astype(">f8")))
put("npy", "i8_1d.npy", npy_bytes(np.arange(7, dtype=np.int64)))
put("npy", "u2.npy", npy_bytes(np.arange(6, dtype=np.uint16).reshape(2, 3)))
put("npy", "i1_big.npy", npy_bytes(np.arange(-4, 4, dtype=np.int8).reshape(4, 2)))
put("npy", "bool.npy", npy_bytes(np.array([[True, False], [False, True]])))
put("npy", "empty_rows.npy", npy_bytes(np.zeros((0, 3))))
put("npy", "nan.npy", npy_bytes(np.array([[1.0, np.nan], [np.inf, 2.0]])))
put("npy", "f8_huge.npy", npy_bytes(np.array([[1e300, -1e300]])))
put("npy", "scalar.npy", npy_bytes(np.float64(3.0)))
put("npy", "3d.npy", npy_bytes(np.zeros((2, 2, 2))))
put("npy", "i8_fortran.npy", npy_bytes(np.asfortranarray(np.arange(12, dtype=">i8").reshape(3, 4))))

put("text", "header.csv", "x,y,z\n1,2,3\n4.5,-6e2,7\n8,9,10\n")
put("text", "spaces.txt", "# comment\n1 2\n\n3\t4\n  5 6  \n")
put("text", "semicolon_crlf.csv", "a;b\r\n1;2\r\n3;4\r\n")
put("text", "lone_cr.csv", "a,b\r1,2\r\r# note\r3,4\r\n5,6,\r")
put("text", "bom.csv", "\ufeffx,y\n1,2\n")
put("text", "special.csv", "1,nan,inf\n-inf,+5,1e-400\n1e308,.5,5.\n")
put("text", "missing.csv", "NA,1,2\n3,,4\n")
put("text", "ragged.csv", "1,2,3\n4,5\n")
put("text", "one_column.txt", "1\n2\n3\n4\n5\n6\n7\n")
put("text", "long_numbers.csv", "123456789012345678901234567890,1\n0.000000000000000000001,2\n")
put("text", "r_write_csv.csv", '"","x","y; z"\n"1",1.5,"2"\n"2",3,"4,5"\n')
put("text", "pandas_index.csv", ",x,y\n0,1.5,2\n1,3,4\n")
put("text", "pandas_numbered.csv", "0,1,2\n0.5,1.0,2e-3\n3,4,5\n")

for dtype, code in [("float32", 0), ("float64", 1), ("int8", 2), ("uint16", 5), ("int64", 8),
                    ("bool", 10)]:
    data = np.arange(12).astype({"bool": np.bool_}.get(dtype, dtype)).tobytes()
    put("raw", f"{dtype}.raw", bytes([code]) + struct.pack("<q", 3) + data)
put("raw", "huge_cols.raw", bytes([1]) + struct.pack("<q", 1 << 61) + bytes(16))
put("raw", "negative_cols.raw", bytes([0]) + struct.pack("<q", -2) + bytes(8))

w = [0.25, 0.75]
means = [[0.0, 1.0], [2.0, -1.0]]
covariances = {
    "full": [[[1.0, 0.2], [0.2, 2.0]], [[0.5, 0.0], [0.0, 0.5]]],
    "diag": [[1.0, 2.0], [0.5, 0.25]],
    "spherical": [1.0, 3.0],
    "tied": [[2.0, 0.5], [0.5, 1.0]],
}
for kind, cov in covariances.items():
    model = {"format": "emix-model", "version": 1, "family": "gaussian", "covariance": kind,
             "n_components": 2, "n_features": 2, "weights": w, "means": means,
             "covariances": cov}
    put("model", f"gaussian_{kind}.json", json.dumps(model, indent=1))
put("model", "bernoulli.json", json.dumps({"family": "bernoulli", "weights": w,
                                           "probabilities": [[0.1, 0.9], [0.5, 0.5]]}))
put("model", "binomial.json", json.dumps({"family": "binomial", "trials": 10, "weights": w,
                                          "probabilities": [[0.1, 0.9], [0.5, 0.5]]}))
put("model", "with_fit.json", json.dumps({
    "format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
    "n_components": 1, "n_features": 1, "weights": [1], "means": [[0]], "covariances": [[1]],
    "fit": {"log_likelihood": -1.5, "history": [-2, -1.5], "n_iter": 1, "converged": True,
            "engine": "cpu (1 thread)", "warnings": ["note"]}}))
put("model", "tiny_variance.json", '{"family": "gaussian", "covariance": "diag", "weights": [1],'
    ' "means": [[0]], "covariances": [[1e-300]]}')
put("model", "escapes.json", '{"family": "gaussi\\u0061n", "covariance": "spherical",'
    ' "weights": [1.0e0], "means": [[-0.0]], "covariances": [2E-1], "extra": {"a": [null, true]}}')

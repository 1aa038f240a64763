"""Peak memory of GaussianMixture.fit by kind of input, against scikit-learn's: each case in a
fresh process, the process's peak resident set (VmHWM, reset before the fit) above what it held
before. 4,000,000 x 8 normal values (244 MiB as float64), diag, K = 2, one iteration.

    PYTHONPATH=build/python build/python-venv/bin/python bench/python_input_memory.py
"""
import subprocess
import sys

CASE = r'''
import sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
import emix
from sklearn.mixture import GaussianMixture

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 2**10

kind, who = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).normal(size=(4_000_000, 8))
columns = [f"c{i}" for i in range(8)]
if kind == "ndarray":
    data = x
elif kind == "mixed":
    data = pd.DataFrame(x, columns=columns).astype({"c0": np.float32})
elif kind == "bool column":
    data = pd.DataFrame(x, columns=columns)
    data["c7"] = data["c7"] > 0
elif kind == "pyarrow Table":
    import pyarrow as pa
    data = pa.Table.from_pandas(pd.DataFrame(x, columns=columns))
else:
    data = pd.DataFrame(x, columns=columns).astype(kind)
del x
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
start = time.perf_counter()
if who == "sklearn":
    if kind == "pyarrow Table":
        data = data.to_pandas()
    GaussianMixture(2, max_iter=1, covariance_type="diag", random_state=0).fit(data)
else:
    emix.GaussianMixture(2, max_iter=1, covariance_type="diag", random_state=0,
                         device="cpu").fit(data)
peak, seconds = status("VmHWM") - before, time.perf_counter() - start
print(f"| {kind} | {who} | +{peak:.0f} MiB | {seconds:.2f} s |")
'''

print("| input | fitted by | peak above the data | fit time |")
print("| --- | --- | --- | --- |")
for kind in ("ndarray", "Float64", "Float32", "float64[pyarrow]", "mixed", "bool column",
             "pyarrow Table"):
    for who in ("emix", "sklearn"):
        subprocess.run([sys.executable, "-c", CASE, kind, who], check=True)

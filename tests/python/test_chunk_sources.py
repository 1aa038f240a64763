"""Issue 14: fit over chunk sources (memmap, h5py, pyarrow, re-iterables) equals the in-memory
fit to 1e-12 relative in float64; bad sources give errors that name the chunk."""

import re
import warnings

import numpy as np
import pytest

import emix
from emix import _chunks
from conftest import overlapping_mixture

TOL = 1e-12


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def fit(x, sample_weight=None, **parameters):
    parameters = {"n_components": 3, "random_state": 0, "device": "cpu", "tol": 1e-6,
                  **parameters}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emix._sklearn.ConvergenceWarning)
        return emix.GaussianMixture(**parameters).fit(x, sample_weight=sample_weight)


def assert_same_model(a, b):
    assert a.n_iter_ == b.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(a, name), getattr(b, name)) < TOL, name
    assert rel(a.lower_bounds_, b.lower_bounds_) < TOL


@pytest.fixture(scope="module")
def data():
    return overlapping_mixture(20240601, n=1000)


@pytest.fixture(scope="module")
def reference(data):
    return fit(data)


def test_memmap(tmp_path, data, reference):
    path = tmp_path / "x.f64"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=data.shape)
    mm[:] = data
    mm.flush()
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=data.shape)
    assert not _chunks.is_chunk_source(mm)  # used in place as one array (test_arrays.py)
    assert_same_model(fit(emix.chunked(mm, chunk_rows=128)), reference)
    assert_same_model(fit(emix.chunked(mm)), reference)  # one chunk of ~64 MiB
    assert "chunks" in fit(emix.chunked(mm, chunk_rows=300)).report_.engine


def test_chunks_are_used_in_place(data):
    adapter = _chunks.adapter_for(emix.chunked(data, chunk_rows=100), None, None)
    view, weights = adapter.chunk(3)
    assert weights is None
    assert view.pointer == data[300:].ctypes.data
    converted = _chunks.adapter_for(emix.chunked(data.astype(np.int64), chunk_rows=100), None,
                                    None)
    assert converted.chunk(0)[0].dtype == "float64"


def test_weights_and_covariance_types(data):
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=len(data))
    for covariance_type in ("diag", "tied"):
        a = fit(emix.chunked(data, chunk_rows=77, sample_weight=w),
                covariance_type=covariance_type)
        b = fit(data, sample_weight=w, covariance_type=covariance_type)
        assert_same_model(a, b)


def test_list_and_reiterable(data, reference):
    pieces = [data[a:a + 90] for a in range(0, len(data), 90)]
    assert_same_model(fit(pieces), reference)

    class Reader:
        """Re-reads its pieces on every iter(), as a file reader would."""

        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            return (p.copy() for p in pieces)

    reader = Reader()
    assert_same_model(fit(reader), reference)
    assert reader.passes > reference.n_iter_
    # Pairs (rows, weights).
    w = np.linspace(0.5, 1.5, len(data))
    pairs = [(data[a:a + 90], w[a:a + 90]) for a in range(0, len(data), 90)]
    assert_same_model(fit(pairs), fit(data, sample_weight=w))


def test_one_shot_generator_is_rejected(data):
    with pytest.raises(TypeError, match="one-shot"):
        fit(data[a:a + 100] for a in range(0, len(data), 100))

    class Once:
        def __iter__(self):
            return self

        def __next__(self):
            raise StopIteration

    with pytest.raises(TypeError, match="one-shot|re-read"):
        fit(Once())


def test_bad_chunks_name_the_chunk(data):
    pieces = [data[a:a + 50].copy() for a in range(0, 500, 50)]
    pieces[7][3, 1] = np.nan
    with pytest.raises(ValueError, match="chunk 7"):
        fit(pieces)
    pieces = [data[a:a + 50] for a in range(0, 500, 50)]
    pieces[4] = pieces[4][:, :2]
    with pytest.raises(ValueError, match="chunk 4"):
        fit(pieces)

    class Shrinking:
        def __init__(self):
            self.n = 10

        def __iter__(self):
            self.n -= 1
            return iter([data[a:a + 50] for a in range(0, 50 * self.n, 50)])

    with pytest.raises(ValueError, match="chunk"):
        fit(Shrinking())

    class SpoilsLater:
        """Values are checked on a chunk's first read; a NaN that appears on the fifth pass
        makes that chunk's log-likelihood NaN, and the chunk is checked again."""

        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            pieces = [data[a:a + 50].copy() for a in range(0, 500, 50)]
            if self.passes >= 5:
                pieces[3][10, 1] = np.nan
            return iter(pieces)

    with pytest.raises(ValueError, match=r"row 161, column 2 is nan \(in chunk 3 \(rows "
                                         r"151..200\) on a later pass\)"):
        fit(SpoilsLater(), max_iter=20, tol=0)

    class Spoils:
        """A value of 1e300 (log-likelihood -inf, not NaN: "the log-likelihood is -inf at
        iteration 2", no chunk named) or a weight of -3 (every sum finite: used silently) that
        appears on the fifth pass."""

        def __init__(self, value=None, weight=None):
            self.passes, self.value, self.weight = 0, value, weight

        def __iter__(self):
            self.passes += 1
            pieces = [(data[a:a + 50].copy(), np.ones(50)) for a in range(0, 500, 50)]
            if self.passes >= 5:
                if self.value is not None:
                    pieces[3][0][10, 1] = self.value
                if self.weight is not None:
                    pieces[3][1][10] = self.weight
            return iter(pieces)

    with pytest.raises(ValueError, match=r"row 161, column 2 is 1e\+300.* \(in chunk 3 \(rows "
                                         r"151..200\) on a later pass\)"):
        fit(Spoils(value=1e300), max_iter=20, tol=0)
    with pytest.raises(ValueError, match=r"sample weights: row 161 is -3.* \(in chunk 3 \(rows "
                                         r"151..200\) on a later pass\)"):
        fit(Spoils(weight=-3.0), max_iter=20, tol=0)


@pytest.mark.parametrize("changes_on_pass", [2, 3, 4, 5])
@pytest.mark.parametrize("rows", [30, 70])
def test_a_chunk_whose_rows_change_on_any_pass_is_named(data, changes_on_pass, rows):
    """The counting pass, the first reads and the initialisation are passes too: a chunk that
    shrinks or grows after any of them is named, never fitted as another data set."""

    class Changes:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            last = data[450:500]
            if self.passes >= changes_on_pass:
                last = np.vstack([last, data[:20]]) if rows > 50 else last[:rows]
            return iter([data[a:a + 50] for a in range(0, 450, 50)] + [last])

    with pytest.raises(ValueError, match=f"chunk 9 \\(rows 451..500\\): {rows} rows now, "
                                         "but 50 before"):
        fit(Changes(), max_iter=10, tol=0)


def test_a_chunk_whose_element_type_widens_on_a_later_pass_is_named(data):
    # The type came from the items' own, counted before the fit; the message blamed a source
    # that "does not say its type" and a "chunk None".
    class Widens:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            kind = np.float32 if self.passes < 4 else np.float64
            return iter([data[:250].astype(kind), data[250:].astype(kind)])

    with pytest.raises(ValueError, match="chunk 0: float64 values now, but the source's items "
                                         "were all float32 when counted before the fit"):
        fit(Widens(), max_iter=10, tol=0)


def test_chunks_of_several_element_types_take_the_widest(data):
    """A float64 chunk is never rounded to float32 because chunk 0 is float32."""
    pieces = [data[:250].astype(np.float32), data[250:]]
    mixed = fit(pieces)
    assert mixed.report_.precision == "float64"
    same = fit([p.astype(np.float64) for p in pieces])
    np.testing.assert_array_equal(mixed.means_, same.means_)
    assert fit([p.astype(np.float32) for p in pieces]).report_.precision == "float32"
    # pandas frames say their columns' types before they are read, as arrays do.
    pd = pytest.importorskip("pandas")
    frames = [pd.DataFrame(p, columns=list("abc")) for p in pieces]
    np.testing.assert_array_equal(fit(frames).means_, same.means_)
    # A generator's items say nothing until read: the first read sets the type, and a wider
    # chunk after it is refused, not rounded (2**24 + 1 is not a float32).
    wide = data[250:].copy()
    wide[:, 0] = 2.0**24 + 1
    gm = fit(data)
    with pytest.raises(ValueError, match=r"chunk 1: float64 values, but the chunks are read as "
                                         r"float32, the type of chunk 0"):
        emix.accumulate(gm, (p for p in [pieces[0], wide]))
    # A float32 chunk after a float64 one is widened, as in a list.
    widened = emix.accumulate(gm, (p for p in [data[250:], pieces[0]]))
    listed = emix.accumulate(gm, [data[250:], pieces[0]])
    assert widened.to_bytes() == listed.to_bytes()


def test_empty_chunks_extra_chunks_and_items_that_are_not_2d(data, reference):
    # NumPy gives an array without rows strides (0, 0); such a chunk holds nothing.
    empty = np.empty((0, data.shape[1]))
    assert_same_model(fit([data[:200], empty, data[200:]]), reference)

    class Grows:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            extra = [data[:50] * 100] if self.passes > 3 else []
            return iter([data[:200], data[200:]] + extra)

    with pytest.raises(ValueError, match="chunk 2: the chunk source gave more than the 2"):
        fit(Grows())
    with pytest.raises(ValueError, match="chunk 1: expected a 2-D array"):
        fit([data[:200], data[200:, 0]])
    with pytest.raises(ValueError, match="chunk_rows must be an int"):
        emix.chunked(data, chunk_rows=True)


def test_sources_that_are_arrays_too_are_evaluated_as_arrays(tmp_path, data, reference):
    h5py = pytest.importorskip("h5py", reason="h5py makes the dataset")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = data
        np.testing.assert_array_equal(reference.predict(f["x"]), reference.predict(data))
    pa = pytest.importorskip("pyarrow", reason="pyarrow makes the table")
    table = pa.table({str(j): data[:, j] for j in range(data.shape[1])})
    assert reference.score(table) == reference.score(data)


def test_h5py_dataset(tmp_path, data, reference):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("x", data=data, chunks=(100, 3))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert_same_model(fit(f["x"]), reference)
        assert_same_model(fit(emix.chunked(f["x"], chunk_rows=333)), reference)


def test_pyarrow_sources(tmp_path, data, reference):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    table = pa.table({f"f{j}": data[:, j] for j in range(data.shape[1])})
    assert_same_model(fit(emix.chunked(table, chunk_rows=250)), reference)
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=200)
    parquet = pq.ParquetFile(tmp_path / "x.parquet")
    assert parquet.num_row_groups == 5
    assert_same_model(fit(parquet), reference)
    directory = tmp_path / "parts"
    directory.mkdir()
    names = table.column_names
    for i, a in enumerate(range(0, len(data), 400)):
        part = table.slice(a, 400)
        if i % 2 == 1:  # files that store the columns in another order: read by name
            part = part.select(names[::-1])
        pq.write_table(part, directory / f"part-{i}.parquet")
    dataset = ds.dataset(directory, format="parquet")
    fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    assert [f.path for f in dataset.get_fragments()] == [f.path for f in fragments]
    assert_same_model(fit(dataset), reference)
    with pytest.raises(ValueError, match=f"{len(data) + 1} weights for {len(data)} rows"):
        fit(emix.chunked(parquet, sample_weight=np.ones(len(data) + 1)))
    # A file without one of the dataset's columns reads as nulls there: named as such, not as
    # a NaN in the data.
    pq.write_table(table.slice(0, 10).drop_columns(["f2"]), directory / "part-9.parquet")
    unified = ds.dataset(directory, format="parquet", schema=table.schema)
    with pytest.raises(ValueError, match=r"column 'f2' holds no values \(all 10 null\): is it "
                                         r"missing from this part"):
        fit(unified)
    nulls = pa.table({"a": pa.array([1.0, None, 3.0]), "b": pa.array([1.0, 2.0, 3.0])})
    with pytest.raises(ValueError, match=r"chunk 0: column 'a' has 1 missing value \(null\)"):
        fit(nulls, n_components=1)
    with pytest.raises(ValueError, match="give it to emix.chunked"):
        emix.accumulate(fit(data), emix.chunked(data, chunk_rows=100), sample_weight=data[:, 0])


class CountingRows:
    """Rows with a shape, sliced as h5py or a memmap is; counts the reads of each block."""

    def __init__(self, x):
        self.x, self.shape, self.reads = x, x.shape, {}

    def __getitem__(self, rows):
        self.reads[rows.start] = self.reads.get(rows.start, 0) + 1
        return self.x[rows]


def test_sources_that_know_their_rows_are_checked_as_first_read(data, reference, monkeypatch):
    """A source cut by rows tells each chunk's rows without reading it, so the fit checks each
    chunk when it first reads it instead of in a pass of its own: the same model, every chunk
    but the first (read for the width) read once less. Bad values are still named."""
    known = CountingRows(data)
    assert_same_model(fit(emix.chunked(known, chunk_rows=250)), reference)
    with monkeypatch.context() as m:
        m.setattr(_chunks._SlicedRows, "known_rows", lambda self, i: -1)
        counted = CountingRows(data)
        assert_same_model(fit(emix.chunked(counted, chunk_rows=250)), reference)
    assert sorted(known.reads) == sorted(counted.reads) == [0, 250, 500, 750]
    for start, reads in counted.reads.items():
        assert known.reads[start] == reads - (start != 0), start

    bad = data.copy()
    bad[777, 2] = np.inf
    with pytest.raises(ValueError, match=r"row 778, column 3 is inf \(in chunk 3 \(rows 751\.\.1000\)\)"):
        fit(emix.chunked(CountingRows(bad), chunk_rows=250))
    pieces = [data[a:a + 100] for a in range(0, len(data), 100)]
    pieces[9] = pieces[9].copy()
    pieces[9][5, 0] = np.nan
    with pytest.raises(ValueError, match="chunk 9"):
        fit(pieces)


def test_sources_with_nothing_to_fit_or_items_of_the_wrong_kind_are_named(data):
    with pytest.raises(ValueError, match="chunk 1: a tuple item is an \\(array, sample_weight\\) "
                                         "pair, but this one has 3 items"):
        fit([(data[:250], np.ones(250)), (data[250:], np.ones(250), 1)])
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match="the chunk source holds no chunks"):
        fit(pa.table({"a": pa.array([], pa.float64())}))
    times = pa.table({"a": pa.array(np.arange(len(data)).astype("datetime64[s]")),
                      "b": pa.array(data[:, 0])})
    with pytest.raises(ValueError, match="column 'a': element type datetime64\\[s\\] is not "
                                         "numeric"):
        fit(times)
    # Objects that are numbers (decimals) are features, as in a pandas frame.
    import decimal
    decimals = pa.table({"a": pa.array([decimal.Decimal(str(round(v, 3))) for v in data[:, 0]],
                                       pa.decimal128(10, 3)),
                         "b": pa.array(data[:, 1])})
    fit(decimals, n_components=2)


def test_chunk_rows_cut_a_parquet_files_row_groups_and_are_refused_where_they_cannot(tmp_path,
                                                                                     data,
                                                                                     reference):
    """chunk_rows was ignored for a ParquetFile and a Dataset (a chunk per row group or fragment,
    silently), and accepted for a list until fit failed: it now cuts a ParquetFile's row groups
    (never across two), and chunked() refuses it where the source gives its own chunks."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    table = pa.table({f"f{j}": data[:, j] for j in range(data.shape[1])})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=300)  # 300, 300, 300, 100
    parquet = pq.ParquetFile(tmp_path / "x.parquet")
    source = _chunks.adapter_for(emix.chunked(parquet, chunk_rows=128), None, None)
    assert [source.known_rows(i) for i in range(source.n_chunks())] == [128, 128, 44] * 3 + [100]
    assert_same_model(fit(emix.chunked(parquet, chunk_rows=128)), reference)
    for unchunkable in ([data[:500], data[500:]], ds.dataset(tmp_path / "x.parquet")):
        with pytest.raises(ValueError, match="chunk_rows applies to"):
            emix.chunked(unchunkable, chunk_rows=100)


def test_one_row_in_chunks_is_refused_as_in_an_array(data):
    # An array of one row is refused (scikit-learn's minimum of 2); in chunks it was fitted, to
    # a covariance of reg_covar around the row.
    gm = emix.GaussianMixture(1, device="cpu")
    with pytest.raises(ValueError, match="Found 1 sample in the chunks while a minimum of 2 is "
                                         "required by GaussianMixture"):
        gm.fit([data[:1]])
    assert not hasattr(gm, "means_")
    with pytest.raises(ValueError, match="minimum of 2 is required by emix.select"):
        emix.select([data[:1]], n_components=[1], device="cpu")
    gm.fit([data[:1], data[1:2]])  # two rows, in two chunks


def test_chunks_are_read_as_the_estimators_read_one_array(data, reference):
    """A chunk is converted as fit converts one array: a DataFrame of mixed or nullable
    columns, objects that are numbers, a DataLoader's [x, w] lists. Before, such chunks were
    refused ("element type object is not numeric") though fit took the same data whole; a chunk
    that is no numbers is named with its chunk (and its column for Arrow)."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": data[:, 0], "b": data[:, 1], "c": data[:, 2]})
    frame["flag"] = data[:, 0] > 0
    frame["count"] = pd.array(np.arange(len(data)) % 7, dtype="Int64")
    whole = fit(frame)
    assert_same_model(fit(emix.chunked(frame, chunk_rows=300)), whole)
    assert_same_model(fit([frame.iloc[:450], frame.iloc[450:]]), whole)
    objects = data.astype(object)
    assert_same_model(fit([objects[:500], objects[500:]]), reference)
    weights = np.linspace(0.5, 2.0, len(data))
    pairs = [[data[:500], weights[:500]], [data[500:], weights[500:]]]
    assert_same_model(fit(pairs), fit(data, sample_weight=weights))
    text = np.array([["1.5", "x", "2"]] * 10)
    with pytest.raises(ValueError, match=r"^chunk 1: could not convert string to float"):
        fit([data[:500], text], n_components=1)
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"a": pa.array(["p", "q"] * 5).dictionary_encode(), "b": np.ones(10)})
    with pytest.raises(ValueError, match=r"chunk 0: column 'a' \(dictionary.*\) does not hold "
                                         r"numbers"):
        fit(table, n_components=1)


def test_fit_predict_refuses_a_chunk_source_before_fitting(data):
    estimator = emix.GaussianMixture(2, device="cpu")
    with pytest.raises(TypeError, match="fit_predict takes one array"):
        estimator.fit_predict([data[:500], data[500:]])
    assert not hasattr(estimator, "weights_")  # the fit had run, and changed the estimator


def test_fit_predict_takes_the_sources_predict_takes(tmp_path, data):
    """An h5py dataset and an Arrow table, which fit and predict take, were refused by
    fit_predict as chunk sources (in a Pipeline too); scikit-learn's fit_predict takes them."""
    sources = []
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = data
    pa = pytest.importorskip("pyarrow")
    sources.append(pa.table({name: data[:, j] for j, name in enumerate("abc")}))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        sources.append(f["x"])
        weights = np.linspace(0.5, 2.0, len(data))
        for source in sources:
            for sample_weight in (None, weights):
                fitted = emix.GaussianMixture(2, device="cpu", random_state=0)
                labels = fitted.fit_predict(source, sample_weight=sample_weight)
                again = emix.GaussianMixture(2, device="cpu", random_state=0)
                again.fit(source, sample_weight=sample_weight)
                np.testing.assert_array_equal(labels, again.predict(source))
                np.testing.assert_array_equal(fitted.means_, again.means_)


def test_chunked_frames_keep_their_column_names(data):
    """fit(emix.chunked(frame)) and fit([frame, frame]) dropped feature_names_in_, so later data
    of other columns went unchecked; emix.accumulate did not check names at all."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    frame = pd.DataFrame(data, columns=["a", "b", "c"])
    for source in (emix.chunked(frame, chunk_rows=300), [frame.iloc[:500], frame.iloc[500:]]):
        fitted = fit(source)
        assert list(fitted.feature_names_in_) == ["a", "b", "c"]
    renamed = frame.rename(columns={"a": "size"})
    with pytest.raises(ValueError, match="feature names"):
        emix.accumulate(fitted, renamed)
    with pytest.raises(ValueError, match="chunk 1: its columns"):
        fit([frame.iloc[:500], renamed.iloc[500:]])
    assert list(emix.select([frame.iloc[:500], frame.iloc[500:]], n_components=[2],
                            covariance_types=["diag"], device="cpu")
                .estimator(0).feature_names_in_) == ["a", "b", "c"]


def test_frames_whose_columns_change_on_a_later_pass_are_refused(data):
    """Chunk 0's column names were recorded again on every pass, so a re-iterable source whose
    frames came with their columns reordered from the third pass on was fitted without a word,
    its features mixed (means 0.05-0.1 off). An iterable of frames that is not a list recorded
    no feature_names_in_ either, where a list of the same frames did."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    frames = [pd.DataFrame(data[i:i + 300], columns=["a", "b", "c"]) for i in range(0, 1000, 300)]

    class Frames:
        def __init__(self, reorder_from_pass):
            self.reorder_from_pass, self.passes = reorder_from_pass, 0

        def __iter__(self):
            self.passes += 1
            for frame in frames:
                yield frame[["c", "b", "a"]] if self.passes >= self.reorder_from_pass else frame

    with pytest.raises(ValueError, match=r"chunk 0: its columns \['c', 'b', 'a'\] are not "
                                         r"\['a', 'b', 'c'\], its own on the first pass "
                                         r"\(pass 3 now\)"):
        fit(Frames(reorder_from_pass=3))
    fitted = fit(Frames(reorder_from_pass=10 ** 6))
    assert list(fitted.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names should match"):
        fitted.predict(frames[0][["b", "a", "c"]])
    chosen = emix.select(Frames(reorder_from_pass=10 ** 6), n_components=[2],
                         covariance_types=["diag"], device="cpu").estimator(0)
    assert list(chosen.feature_names_in_) == ["a", "b", "c"]
    # The names are chunk 0's, read without its rows (a view would hold them for the fit), or
    # none: a frame that comes second in a list of an array and a frame names nothing.
    source = _chunks.adapter_for(Frames(reorder_from_pass=10 ** 6), None, None)
    source.peek_features()
    assert list(source.first_frame.columns) == ["a", "b", "c"] and len(source.first_frame) == 0
    for block in getattr(source.first_frame, "_mgr").blocks:  # pandas' own arrays
        assert block.values.base is None or block.values.base.nbytes == 0
    assert not hasattr(fit([data[:500], frames[0]]), "feature_names_in_")
    with pytest.raises(ValueError, match=r"chunk 2: its columns \['c', 'b', 'a'\] are not "
                                         r"chunk 1's \['a', 'b', 'c'\]"):
        fit([data[:300], frames[1], frames[2][["c", "b", "a"]]])
    # polars frames too.
    pl = pytest.importorskip("polars")
    polars_frames = [pl.from_pandas(frame) for frame in frames]

    class PolarsFrames(Frames):
        def __iter__(self):
            self.passes += 1
            for frame in polars_frames:
                yield (frame.select(["c", "b", "a"]) if self.passes >= self.reorder_from_pass
                       else frame)

    with pytest.raises(ValueError, match=r"chunk 0: its columns \['c', 'b', 'a'\]"):
        fit(PolarsFrames(reorder_from_pass=3))
    # A list of them is chunks too (polars frames have no ndim: "Found array with dim 3").
    assert_same_model(fit(polars_frames), fit(data))
    assert list(fit(polars_frames).feature_names_in_) == ["a", "b", "c"]


def test_arrow_sources_record_their_column_names(tmp_path, data):
    """A ParquetFile or a pyarrow Dataset, the README's way to fit a file, left no
    feature_names_in_ where a Table of the same columns did: a frame of swapped columns was then
    predicted without a word, and one of the fit's own columns warned that the fit had no names.
    Their schema names the features now, as a Table's columns do."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    table = pa.table({name: data[:, j] for j, name in enumerate(["a", "b", "c"])})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=300)
    frame = pd.DataFrame(data, columns=["a", "b", "c"])
    for source in (table, pq.ParquetFile(tmp_path / "x.parquet"),
                   ds.dataset(tmp_path / "x.parquet"), emix.chunked(table, chunk_rows=300)):
        fitted = fit(source)
        assert list(fitted.feature_names_in_) == ["a", "b", "c"], type(source)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "fitted without feature names"
            fitted.predict(frame)
        with pytest.raises(ValueError, match="feature names should match"):
            fitted.predict(frame[["b", "a", "c"]])
    pq.write_table(table.rename_columns(["x", "y", "z"]), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="feature names should match"):
        emix.accumulate(fitted, pq.ParquetFile(tmp_path / "other.parquet"))


def test_lists_of_arrow_tables_and_record_batches_are_chunks(data, reference):
    """fit([table, table]) and fit(table.to_batches(...)) failed with "Found array with dim 3"
    (an Arrow chunk has no ndim, so the list was read as one array): each item is a chunk now,
    converted as a Table source's record batches are, its columns the feature names, which
    every chunk must share."""
    pa = pytest.importorskip("pyarrow")
    table = pa.table({f"f{j}": data[:, j] for j in range(data.shape[1])})
    tables = [table.slice(0, 450), table.slice(450)]
    batches = table.to_batches(max_chunksize=300)
    assert len(batches) == 4
    for source in (tables, batches, tuple(batches), [(t, np.ones(t.num_rows)) for t in tables]):
        fitted = fit(source)
        assert_same_model(fitted, reference)
        if emix._sklearn.HAVE_SKLEARN:
            assert list(fitted.feature_names_in_) == ["f0", "f1", "f2"]
    assert _chunks.adapter_for(batches, None, None).known_rows(3) == 100  # without reading it
    # Float32 columns stay float32 only if every chunk's are (as for a list of arrays).
    single = pa.table({f"f{j}": data[:, j].astype(np.float32) for j in range(data.shape[1])})
    assert fit([single.slice(0, 500), single.slice(500)]).report_.precision == "float32"
    assert fit([single.slice(0, 500), table.slice(500)]).report_.precision == "float64"
    renamed = table.rename_columns(["f0", "size", "f2"])
    with pytest.raises(ValueError, match=r"chunk 1: its columns \['f0', 'size', 'f2'\] are not "
                                         r"chunk 0's"):
        fit([table.slice(0, 500), renamed.slice(500)])
    with pytest.raises(TypeError, match="not a chunk source"):
        reference.predict(tables)


def test_an_error_the_source_raises_names_the_chunk_and_the_pass(tmp_path, data):
    """An error of the source's own (a file gone, a file closed between passes) reached the
    caller with no chunk or pass named. It keeps its type and message, so that the caller's
    except clauses still catch it, and gains a note of the chunk and the pass; emix's own
    errors, which name the chunk already, and KeyboardInterrupt gain none."""
    pieces = [data[a:a + 50] for a in range(0, 500, 50)]

    class Fails:
        """Raises `error` on the pass `on_pass` over it: from iter(), or from next() when it
        reaches chunk `at`."""

        def __init__(self, error, on_pass=3, at=None):
            self.error, self.on_pass, self.at, self.passes = error, on_pass, at, 0

        def __iter__(self):
            self.passes += 1
            if self.passes >= self.on_pass and self.at is None:
                raise self.error
            return self.items(self.passes >= self.on_pass)

        def items(self, fail):
            for i, piece in enumerate(pieces):
                if fail and i == self.at:
                    raise self.error
                yield piece

    gone = OSError("file gone")
    with pytest.raises(OSError) as raised:
        fit(Fails(gone))
    assert raised.value is gone and str(gone) == "file gone"
    assert gone.__notes__ == ["emix: raised while reading chunk 0 (rows 1..50) of the chunk "
                              "source, on pass 3 over it"]
    down = Fails(RuntimeError("network down"), on_pass=5, at=6)
    with pytest.raises(RuntimeError) as raised:
        fit(down)
    assert str(raised.value) == "network down"
    assert raised.value.__notes__ == ["emix: raised while reading chunk 6 (rows 301..350) of "
                                      f"the chunk source, on pass {down.passes} over it"]

    class Shrinks:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            return iter(pieces if self.passes < 3 else pieces[:5])

    with pytest.raises(ValueError, match="chunk 5: the chunk source ended after") as raised:
        fit(Shrinks())
    assert not hasattr(raised.value, "__notes__")
    with pytest.raises(KeyboardInterrupt) as raised:
        fit(Fails(KeyboardInterrupt()))
    assert not hasattr(raised.value, "__notes__")

    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = data
    f = h5py.File(tmp_path / "x.h5", "r")

    def close(info):
        if info.iteration == 2:
            f.close()

    with pytest.raises((OSError, RuntimeError)) as raised:  # h5py's, as it reads
        fit(emix.chunked(f["x"], chunk_rows=300), callback=close, tol=0, max_iter=5)
    assert raised.value.__notes__[0].startswith("emix: raised while reading chunk 0 (rows "
                                                "1..300) of the chunk source, on pass ")

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    directory = tmp_path / "parts"
    directory.mkdir()
    for i, a in enumerate(range(0, len(data), 250)):
        pq.write_table(pa.table({f"f{j}": data[a:a + 250, j] for j in range(3)}),
                       directory / f"part-{i}.parquet")

    def remove(info):
        if info.iteration == 2:
            (directory / "part-2.parquet").unlink()

    with pytest.raises(FileNotFoundError) as raised:
        fit(ds.dataset(directory), callback=remove, tol=0, max_iter=5)
    # The rows of a dataset's files are known once read: on the passes after the first.
    assert raised.value.__notes__[0].startswith("emix: raised while reading chunk 2 (rows "
                                                "501..750) of the chunk source, on pass ")


def test_a_datasets_files_are_read_in_their_own_column_types(tmp_path, data):
    """Each file of a pyarrow Dataset was cast to the dataset's schema, which takes the first
    file's types: a float64 file after a float32 one was rounded to float32 without a word, and
    a float file after an int64 one failed ("Float value 35.500000 was truncated converting to
    int64"). Each file keeps its own types now, and the fit takes the widest, as for a list of
    the same tables."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    names = ["f0", "f1", "f2"]
    for first_type in (np.float32, np.int64):
        directory = tmp_path / np.dtype(first_type).name
        directory.mkdir()
        head = data[:400] * (100 if first_type == np.int64 else 1)
        tables = [pa.table({name: head[:, j].astype(first_type) for j, name in enumerate(names)}),
                  pa.table({name: data[400:, j] for j, name in enumerate(names)})]
        pq.write_table(tables[0], directory / "part-0.parquet")
        pq.write_table(tables[1].select(names[::-1]), directory / "part-1.parquet")  # reordered
        fitted = fit(ds.dataset(directory))
        assert fitted.report_.precision == "float64"
        listed = fit(tables)
        np.testing.assert_array_equal(fitted.means_, listed.means_)
        np.testing.assert_array_equal(fitted.covariances_, listed.covariances_)
    # Float32 files stay float32 when every file is.
    directory = tmp_path / "single"
    directory.mkdir()
    for i, a in enumerate((0, 500)):
        pq.write_table(pa.table({name: data[a:a + 500, j].astype(np.float32)
                                 for j, name in enumerate(names)}),
                       directory / f"part-{i}.parquet")
    assert fit(ds.dataset(directory)).report_.precision == "float32"


def test_sample_weight_of_chunks_is_read_as_fit_reads_it(tmp_path, data):
    """emix.chunked(X, sample_weight=2.0) was refused ("sample_weight has 1 values, but the
    data have 1000 rows") where fit(X, sample_weight=2.0) weighs every row alike, and complex
    or time weights were taken (the imaginary part dropped, times as numbers) where fit refuses
    them. Weights of chunks are read as fit reads them now: numbers in strings too."""
    in_memory = fit(data, sample_weight=2.0)
    assert_same_model(fit(emix.chunked(data, chunk_rows=300, sample_weight=2.0)), in_memory)
    assert_same_model(fit(emix.chunked(data, chunk_rows=300, sample_weight=np.float32(2))),
                      in_memory)
    assert_same_model(fit(emix.chunked(data, chunk_rows=300, sample_weight=np.array(2.0))),
                      in_memory)
    text = np.array(["2"] * len(data))
    assert_same_model(fit(emix.chunked(data, chunk_rows=300, sample_weight=text)),
                      fit(data, sample_weight=text))
    for bad, shown in ((-1.0, "-1"), (np.nan, "nan")):
        with pytest.raises(ValueError, match=f"sample weights: row 1 is {shown}"):
            fit(data, sample_weight=bad)
        with pytest.raises(ValueError, match=f"sample weights: row 1 is {shown}"):
            fit(emix.chunked(data, chunk_rows=300, sample_weight=bad))
    for bad in (np.ones(len(data), complex), np.zeros(len(data), "datetime64[s]")):
        message = f"sample_weight: element type {bad.dtype} is not real numbers"
        with pytest.raises(ValueError, match=re.escape(message)):
            fit(data, sample_weight=bad)
        with pytest.raises(ValueError, match=re.escape(message)):
            fit(emix.chunked(data, chunk_rows=300, sample_weight=bad))
    with pytest.raises(ValueError, match="sample_weight must be 1-D or a scalar"):
        emix.chunked(data, sample_weight=np.ones((len(data), 1)))
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    table = pa.table({f"f{j}": data[:, j] for j in range(data.shape[1])})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=300)
    for source in (table, pq.ParquetFile(tmp_path / "x.parquet"),
                   ds.dataset(tmp_path / "x.parquet")):
        assert_same_model(fit(emix.chunked(source, sample_weight=2.0)), in_memory)


def test_a_chunk_of_tiny_weights_is_judged_with_the_other_chunks(data):
    """Weights below DBL_MIN count as 0: the rule that refuses them where they would matter was
    applied to each chunk alone, and refused a chunk of them beside a chunk of normal weights,
    which the in-memory fit takes. Weights that all count as 0 are refused once every chunk's
    are checked, with all the others too small to keep digits (below 2^-600)."""
    weights = np.where(np.arange(len(data)) < 500, 1.0, 1e-310)
    pieces = [(data[:500], weights[:500]), (data[500:], weights[500:])]
    whole = fit(data, sample_weight=weights)
    assert_same_model(fit(pieces), whole)
    tiny = [(data[:500], np.full(500, 1e-310)), (data[500:], np.full(len(data) - 500, 1e-310))]
    with pytest.raises(emix.InvalidArgument, match=r"chunk source: sample weights are all "
                                                   r"below .* \(the largest is 1e-310\)"):
        fit(tiny)


def test_a_converted_chunk_is_let_go_before_the_next_is_read(data, monkeypatch):
    """The library held chunk i-1's converted array while the source converted chunk i: two
    chunks' memory at once. Each converted chunk must be gone when the next is made."""
    import gc
    import weakref

    made = []
    convert = _chunks._as_chunk_array

    def spy(x, dtype, index):
        gc.collect()
        alive = [i for i, ref in made if ref() is not None]
        assert alive == [], f"chunks {alive} still held while chunk {index} is converted"
        result = convert(x, dtype, index)
        made.append((index, weakref.ref(result)))
        return result

    monkeypatch.setattr(_chunks, "_as_chunk_array", spy)
    chunks = [np.round(data[i:i + 250] * 64).astype(np.int32) for i in range(0, 1000, 250)]
    gm = fit(chunks, max_iter=3)
    assert len(made) > 8  # every pass converted each integer chunk again
    converted = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
    assert_same_model(gm, fit(converted, max_iter=3))


def test_a_source_of_one_chunk_is_converted_once(data, monkeypatch):
    """A pyarrow Table of one record batch (what Table.from_pandas makes) was converted again
    on every pass: twice the in-memory fit's time. A source of one chunk is its data whole."""
    pa = pytest.importorskip("pyarrow")
    calls = []
    convert = _chunks._as_chunk_array

    def count(x, dtype, index):
        calls.append(index)
        return convert(x, dtype, index)

    monkeypatch.setattr(_chunks, "_as_chunk_array", count)
    table = pa.table({f"x{j}": data[:, j] for j in range(data.shape[1])})
    assert len(table.to_batches()) == 1
    gm = fit(table, max_iter=5, tol=0)
    assert calls == [0]
    assert gm.n_iter_ == 5
    assert_same_model(gm, fit(data, max_iter=5, tol=0))


def test_an_array_whose_conversion_would_not_fit_in_memory_is_read_in_chunks(data, reference,
                                                                            monkeypatch):
    """An int16 or big-endian memmap of a file larger than memory was converted whole into
    float64. Where the copy would take more than half the physical memory (here made small),
    fit, select and accumulate read it chunk by chunk; arrays used in place are not touched."""
    monkeypatch.setattr(_chunks, "_usable_memory_bytes", lambda: 2 * data.size * 8 - 1)
    big_endian = data.astype(">f8")
    assert _chunks.converts_beyond_memory(big_endian, None)
    assert not _chunks.converts_beyond_memory(data, None)  # used in place
    assert not _chunks.converts_beyond_memory(data.astype(np.float32), None)
    in_memory = emix.select(data, n_components=[2, 3], covariance_types=["diag"],
                            random_state=0, device="cpu")
    whole = emix.accumulate(reference, data)

    def no_whole_copy(x, dtype, name):
        raise AssertionError(f"{name} converted the whole array")

    with monkeypatch.context() as patch:
        patch.setattr(emix._arrays, "_host_array", no_whole_copy)
        gm = fit(big_endian)
        selected = emix.select(big_endian, n_components=[2, 3], covariance_types=["diag"],
                               random_state=0, device="cpu")
        stats = emix.accumulate(reference, big_endian)
    assert "chunk" in gm.report_.engine  # "1 chunk" here: it fits memory in one
    assert_same_model(gm, reference)
    assert "chunk" in selected.engine
    assert selected.best_index_ == in_memory.best_index_
    assert rel(selected.best_estimator_.means_, in_memory.best_estimator_.means_) < TOL
    np.testing.assert_allclose(stats.sums, whole.sums, rtol=TOL)
    # fit_predict fits by chunks, then reads the data whole for the labels.
    np.testing.assert_array_equal(
        emix.GaussianMixture(3, random_state=0, device="cpu", tol=1e-6).fit_predict(big_endian),
        reference.predict(data))

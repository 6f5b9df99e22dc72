"""Map selections travel as int32 buffers or bitmasks both ways and are validated with numpy; bad ones are refused."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
import traitlets

from cirscope.widgets import Explorer, MapView
from cirscope.widgets._rowset import Rows, check_rows, rowset_from_json, rowset_to_json, use_bitmask


def browser_message(rows, dtype="int32", shape=None) -> dict:
    """What ipywidgets hands the kernel for a selection sent by the front end (buffer as memoryview)."""
    arr = np.asarray(rows, dtype=dtype)
    return {"dtype": str(arr.dtype), "shape": [arr.size] if shape is None else shape, "data": memoryview(arr.tobytes())}


def bitmask_message(rows, n, *, shape=None, extra=b"") -> dict:
    """A bitmask selection as the front end sends it (bit i & 7 of byte i >> 3 is row i)."""
    mark = np.zeros(n, bool)
    mark[np.asarray(rows, dtype=np.int64)] = True
    data = np.packbits(mark, bitorder="little").tobytes() + extra
    return {"dtype": "bitmask", "shape": [n] if shape is None else shape, "data": memoryview(data)}


def make_view(n=1000) -> MapView:
    return MapView(coords=np.random.default_rng(0).normal(size=(n, 2)))


def test_python_values_of_every_kind_read_back_as_a_list_with_an_int64_array():
    view = make_view()
    view.selected = [5, 3, 9]
    assert view.selected == [5, 3, 9] and isinstance(view.selected, list)
    assert view.selected.array.dtype == np.int64 and view.selected.array.tolist() == [5, 3, 9]
    with pytest.raises(ValueError):
        view.selected.array[0] = 1  # read-only: the list and the array cannot drift apart
    view.selected = np.array([7, 2], dtype=np.uint16)
    assert view.selected == [7, 2]
    mask = np.zeros(1000, bool)
    mask[[1, 998]] = True
    view.selected = mask
    assert view.selected == [1, 998]
    view.selected = ()
    assert view.selected == [] and view.selected.array.shape == (0,)
    view.selected = None
    assert view.selected == []


def test_selection_goes_to_the_browser_as_int32_rows_when_sparse_and_a_bitmask_when_dense():
    view = make_view()
    view.selected = [999, 3, 500]  # 12 bytes as rows < 125 bytes as a bitmask
    state = view.get_state("selected")["selected"]
    assert state["dtype"] == "int32" and state["shape"] == [3]
    assert np.frombuffer(state["data"], dtype="<i4").tolist() == [999, 3, 500]
    view.selected = list(range(0, 1000, 3))  # 334 rows: 1,336 bytes as rows, 125 as a bitmask
    state = view.get_state("selected")["selected"]
    assert state["dtype"] == "bitmask" and state["shape"] == [1000] and len(state["data"]) == 125
    bits = np.unpackbits(np.frombuffer(state["data"], np.uint8), count=1000, bitorder="little")
    assert np.flatnonzero(bits).tolist() == list(range(0, 1000, 3))
    assert [use_bitmask(k, 1000) for k in (31, 32)] == [False, True]  # the browser's rule (useBitmask)


def test_a_500k_row_selection_from_the_browser_arrives_whole():
    n = 1_000_000
    view = MapView(coords=np.zeros((n, 2), np.float32))
    rows = np.arange(0, n, 2, dtype=np.int32)  # 500,000 rows
    seen = []
    view.observe(lambda change: seen.append(change["new"]), "selected")
    view.set_state({"selected": browser_message(rows)})  # the path a browser update takes
    assert len(seen) == 1 and len(view.selected) == 500_000
    np.testing.assert_array_equal(view.selected.array, rows)
    assert view.selected[:3] == [0, 2, 4] and view.selected[-1] == n - 2
    back = rowset_to_json(view.selected)  # and back again, as bytes (no widget: no bitmask)
    assert bytes(back["data"]) == rows.astype("<i4").tobytes()


def test_a_dense_selection_arrives_as_a_bitmask_and_is_not_sent_back(monkeypatch):
    n = 1_000_000
    view = MapView(coords=np.zeros((n, 2), np.float32))
    rows = np.flatnonzero(np.random.default_rng(1).random(n) < 0.53)  # ~530,000 rows, scattered
    message = bitmask_message(rows, n)
    assert message["data"].nbytes == 125_000  # not 2 MB of int32
    sent = []
    monkeypatch.setattr(view, "send_state", lambda key=None: sent.append(key))
    view.set_state({"selected": message})
    np.testing.assert_array_equal(view.selected.array, rows)
    assert len(view.selected) == rows.size and sent == []  # the browser has it: no echo
    assert rowset_to_json(view.selected, view)["data"] == bytes(message["data"])  # the same bytes back
    view.set_state({"selected": browser_message([])})  # cleared: 0 rows go as int32 (smaller)
    assert view.selected == [] and sent == []


def test_a_selection_from_the_browser_builds_no_python_list_until_read_as_one():
    view = MapView(coords=np.zeros((200_000, 2), np.float32))
    seen = []
    view.observe(lambda change: seen.append((len(change["new"]), bool(change["new"]))), "selected")
    view.set_state({"selected": bitmask_message(np.arange(0, 200_000, 2), 200_000)})
    rows = view.selected
    assert seen == [(100_000, True)] and list.__len__(rows) == 0  # only the int64 array so far
    assert np.asarray(rows) is rows.array and list.__len__(rows) == 0
    assert rows[:3] == [0, 2, 4] and list.__len__(rows) == 100_000  # made on first use as a list
    small = view.selected = [4, 1]
    for rows in (Rows(np.array([4, 1])), view.selected):  # every way a list is used sees the rows
        assert rows == [4, 1] and [4, 1] == rows and rows != [1, 4] and rows == small
        assert list(rows) == [4, 1] and tuple(rows) == (4, 1) and sorted(rows) == [1, 4] and [*rows] == [4, 1]
        assert rows + [9] == [4, 1, 9] and 2 * rows == [4, 1, 4, 1]  # noqa: RUF005 (the operators are the test)
        assert [0] + Rows(np.array([4, 1])) == [0, 4, 1]  # noqa: RUF005 (list + unfilled Rows: our __radd__)
        assert list(Rows(np.array([4, 1]))) == [4, 1] and sorted(Rows(np.array([4, 1]))) == [1, 4]
        assert json.dumps(Rows(np.array([4, 1]))) == "[4, 1]" and 1 in Rows(np.array([4, 1]))
        assert rows.index(1) == 1 and rows.count(4) == 1 and rows[-1] == 1 and rows.copy() == [4, 1]
        assert isinstance(rows, list) and repr(rows) == "[4, 1]" and max(rows) == 4 and len(rows) == 2


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (browser_message([1, 2], dtype="float32"), "must hold integers"),
        (browser_message([1, 2], shape=[3]), "does not hold 3 values"),
        (browser_message([[1, 2]], shape=[1, 2]), "one-dimensional"),
        ({"dtype": "int32", "shape": [1], "data": memoryview(b"\x01\x00\x00")}, "does not hold 1 values"),
        ({"dtype": "int32", "shape": [1], "data": "AQAAAA=="}, "needs a binary buffer"),
        ({"rows": [1]}, r"must be \{dtype, shape, data\}"),
        (browser_message([1, 1000]), r"rows \[1000\] are outside the 1,000 points \(0..999\)"),
        (browser_message([-3, 4]), r"rows \[-3\] are outside"),
        (browser_message([4, 8, 4]), "must not repeat: row 4"),
        (bitmask_message([1, 2], 1000, extra=b"\x00"), "needs 125 bytes, got 126"),
        ({**bitmask_message([1, 2], 1000), "data": memoryview(b"\x06" * 124)}, "needs 125 bytes, got 124"),
        (bitmask_message([1, 2], 999), "of 999 points does not fit this map of 1,000 points"),
        (bitmask_message([1, 2], 1000, shape=[1000, 1]), "needs shape"),
        (bitmask_message([1, 2], 1000, shape=["1000"]), "needs shape"),
        ({"dtype": "bitmask", "shape": [1001], "data": memoryview(bytes(125) + b"\x80")}, "does not fit"),
        (bitmask_message(np.arange(0, 1000, 2), 1000), None),  # the control: a good one is taken
    ],
)
def test_bad_browser_buffers_are_refused_and_the_previous_selection_is_kept(message, match, monkeypatch):
    view = make_view()
    view.selected = [10, 20]
    resent = []
    monkeypatch.setattr(view, "send_state", lambda key=None: resent.append(key))
    seen = []
    view.observe(lambda change: seen.append(change), "selected")
    if match is None:  # the control case: a good message of the same shape is taken
        view.set_state({"selected": message})
        # taken; sent back only because the kernel set [10, 20] a moment ago (it may have crossed)
        assert view.selected == list(range(0, 1000, 2)) and len(seen) == 1 and resent == ["selected"]
        return
    with pytest.raises((traitlets.TraitError, ValueError), match=match):
        view.set_state({"selected": message})
    assert view.selected == [10, 20] and seen == []
    assert resent == ["selected"]  # the browser is told to show the kept selection again


def test_a_bitmask_with_bits_past_the_last_point_is_refused():
    view = make_view(1001)  # 126 bytes, the last one holds row 1000 in bit 0
    view.selected = [10, 20]
    for last in (0x02, 0x80):  # rows 1001 and 1007 do not exist
        with pytest.raises(ValueError, match="bits set past the last point"):
            view.set_state({"selected": {"dtype": "bitmask", "shape": [1001], "data": memoryview(bytes(125) + bytes([last]))}})
        assert view.selected == [10, 20]
    view.set_state({"selected": {"dtype": "bitmask", "shape": [1001], "data": memoryview(bytes(125) + b"\x01")}})
    assert view.selected == [1000]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([0.5, 2.0], "must be a flat list of row numbers"),
        ([[1, 2]], "flat list"),
        (["a"], "flat list"),
        ([1000], "outside the 1,000 points"),
        ([3, 3], "must not repeat: row 3"),
        (np.ones(10, bool), "one value per point"),
        (5, "flat list"),
    ],
)
def test_bad_python_values_are_refused_with_the_fix_and_the_selection_kept(value, match):
    view = make_view()
    view.selected = [1]
    with pytest.raises(traitlets.TraitError, match=match):
        view.selected = value
    assert view.selected == [1]


def test_a_selection_cannot_be_changed_in_place_but_can_be_replaced():
    view = make_view()
    view.selected = [1, 2]
    for change in (lambda s: s.append(3), lambda s: s.extend([3]), lambda s: s.__setitem__(0, 5), lambda s: s.sort(),
                   lambda s: s.pop(), lambda s: s.clear()):
        with pytest.raises(TypeError, match="assign a new list"):
            change(view.selected)
    view.selected = [*view.selected, 3]
    assert view.selected == [1, 2, 3]
    rows = view.selected
    assert pickle.loads(pickle.dumps(rows)) == [1, 2, 3] and copy.deepcopy(rows).array.tolist() == [1, 2, 3]
    assert repr(rows) == "[1, 2, 3]"


def test_fewer_points_drop_a_selection_that_named_the_missing_ones():
    view = make_view()
    view.selected = [5, 900]
    view.coords = np.zeros((500, 2))
    assert view.selected == []
    view.selected = [5]
    view.coords = np.zeros((100, 2))
    assert view.selected == [5]


def test_check_rows_is_vectorised_and_names_the_range():
    assert check_rows(np.arange(5, dtype=np.uint8), 5).dtype == np.int64
    with pytest.raises(IndexError, match=r"outside the gallery \(0..4\)"):
        check_rows([7], 5, within="gallery")
    with pytest.raises(IndexError, match="negative"):
        check_rows([-1], None)
    big = np.random.default_rng(0).permutation(2_000_000)[:600_000]
    assert check_rows(big, 2_000_000, unique=True).size == 600_000
    assert check_rows(big, None, unique=True).size == 600_000  # no size known: a sort instead of a mark array
    with pytest.raises(ValueError, match="repeat"):
        check_rows(np.append(big, big[17]), 2_000_000, unique=True)
    assert rowset_from_json(None).size == 0 and isinstance(Rows([2, 1]), list)


def test_explorer_follows_a_selection_from_the_browser(toy_space):
    ex = Explorer(toy_space, map="pca", reference=3, text="make it yellow")
    ex.map.set_state({"selected": browser_message([12, 10, 11])})
    assert ex.grid.mode == "selection" and ex.grid.rows == [12, 10, 11] and ex.grid.n_selected == 3
    assert ex.map.selected_ids == [str(i) for i in toy_space.gallery.ids[[12, 10, 11]]]
    with pytest.raises(traitlets.TraitError):
        ex.map.set_state({"selected": browser_message([len(toy_space)])})
    assert ex.grid.rows == [12, 10, 11]  # nothing lost
    ex.close()


def test_a_browser_selection_crossing_a_kernel_set_is_answered_with_the_kernels_value(monkeypatch):
    """The browser sends A while the kernel sets B: the kernel keeps the last value it got and
    sends it back, so the browser (which received B meanwhile) ends up showing the same."""
    from cirscope.widgets import _map_view

    clock = [1000.0]
    monkeypatch.setattr(_map_view.time, "monotonic", lambda: clock[0])
    view = make_view()
    sent = []
    monkeypatch.setattr(view, "send_state", lambda key=None: sent.append((key, view.selected.array.tolist())))
    clock[0] += 60
    view.set_state({"selected": browser_message([1, 2])})  # no kernel set lately: no echo
    assert sent == []
    view.selected = [7, 8]  # kernel sets B ...
    view.set_state({"selected": browser_message([3])})  # ... while the browser's A was on the wire
    view.set_state({"selected": browser_message([4, 5])})  # and a second browser update
    assert view.selected.array.tolist() == [4, 5]
    # B went out, then each browser value is answered: the last thing the browser gets is the kernel's value
    assert sent == [("selected", [7, 8]), ("selected", [3]), ("selected", [4, 5])]
    clock[0] += _map_view._RESYNC_SECONDS + 1
    sent.clear()
    view.set_state({"selected": browser_message([6])})
    assert sent == [] and view.selected.array.tolist() == [6]

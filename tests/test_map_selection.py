"""Map selections travel as int32 buffers both ways and are validated with numpy; bad ones are refused."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import traitlets

from cirscope.widgets import Explorer, MapView
from cirscope.widgets._codec import Rows, check_rows, rowset_from_json, rowset_to_json


def browser_message(rows, dtype="int32", shape=None) -> dict:
    """What ipywidgets hands the kernel for a selection sent by the front end (buffer as memoryview)."""
    arr = np.asarray(rows, dtype=dtype)
    return {"dtype": str(arr.dtype), "shape": [arr.size] if shape is None else shape, "data": memoryview(arr.tobytes())}


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


def test_selection_goes_to_the_browser_as_one_int32_buffer():
    view = make_view()
    view.selected = list(range(0, 1000, 3))
    state = view.get_state("selected")["selected"]
    assert state["dtype"] == "int32" and state["shape"] == [334]
    assert np.frombuffer(state["data"], dtype="<i4").tolist() == list(range(0, 1000, 3))


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
    back = rowset_to_json(view.selected)  # and back again, as bytes
    assert bytes(back["data"]) == rows.astype("<i4").tobytes()


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
    ],
)
def test_bad_browser_buffers_are_refused_and_the_previous_selection_is_kept(message, match, monkeypatch):
    view = make_view()
    view.selected = [10, 20]
    resent = []
    monkeypatch.setattr(view, "send_state", lambda key=None: resent.append(key))
    seen = []
    view.observe(lambda change: seen.append(change), "selected")
    with pytest.raises((traitlets.TraitError, ValueError), match=match):
        view.set_state({"selected": message})
    assert view.selected == [10, 20] and seen == []
    assert resent == ["selected"]  # the browser is told to show the kept selection again


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

"""The escapers of ``cirscope._core.text`` on every hostile string: nothing active survives, nothing is lost."""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import pytest

from cirscope._core.text import (
    TERMINAL_UNSAFE,
    html_text,
    plotly_text,
    plotly_texts,
    script_json,
    terminal_text,
)
from tests.hostile_strings import HOSTILE, plotly_display


@pytest.mark.parametrize("s", HOSTILE)
def test_script_json_cannot_leave_its_script_and_round_trips(s):
    out = script_json({"id": s, "list": [s, 1]})
    for unsafe in ("<", ">", "&", "\u2028", "\u2029"):
        assert unsafe not in out
    assert json.loads(out) == {"id": s, "list": [s, 1]}


@pytest.mark.parametrize("s", HOSTILE)
def test_plotly_text_displays_literally(s):
    out = plotly_text(s)
    assert "<" not in out and ">" not in out and "$" not in out
    assert len(re.findall("&", out)) == len(re.findall(r"&(amp|lt|gt|#36);", out))
    assert plotly_display(out) == s  # plotly decodes exactly these entities back


def test_plotly_text_keeps_distinct_labels_distinct():
    labels = ["&lt;", "<", "&amp;lt;", "&", "&amp;", "$", "&#36;"]
    assert len(set(plotly_texts(labels))) == len(labels)


@pytest.mark.parametrize("s", HOSTILE)
def test_html_text_leaves_no_markup(s):
    out = html_text(s)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    import html

    assert html.unescape(out) == s


def test_terminal_unsafe_is_every_control_separator_and_bidi_mark():
    bidi = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
    for code in range(0x3000):
        c = chr(code)
        expected = unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in bidi
        assert (c in TERMINAL_UNSAFE) == expected, hex(code)


@pytest.mark.parametrize("s", HOSTILE)
def test_terminal_text_prints_no_control_character(s):
    out = terminal_text(s)
    assert not set(out) & TERMINAL_UNSAFE
    if not set(s) & TERMINAL_UNSAFE:
        assert out == s  # ordinary text (markup included) is untouched


def test_terminal_text_names_what_it_escaped():
    assert terminal_text("a\x1b[2Jb\u202ec\nd\x00") == "a\\x1b[2Jb\\u202ec\\nd\\x00"
    assert terminal_text(sys.maxsize) == str(sys.maxsize)

"""User text made inert for the places cirscope shows it: inline scripts, plotly charts, HTML, terminals.

Ids, captions, labels, column names and query texts come from user data (file names,
CSV cells) and may hold anything: markup, script, plotly's tags, control characters.
Every surface that shows them goes through one of these functions:

* :func:`script_json` / :func:`escape_script_json` -- JSON inside an inline ``<script>``
  (``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\uXXXX`` escapes, so no string can
  close the block, open a comment or end a JavaScript line).
* :func:`plotly_text` -- text in a plotly label, category, hover text, legend or title:
  plotly.js renders a subset of HTML (``<b>``, ``<br>``, ``<a href>``, ``<sup>``, entities)
  and typesets ``$...$`` as TeX when MathJax is on the page; ``&``, ``<``, ``>`` and ``$``
  become entities that plotly turns back into the literal characters.
* :func:`html_text` -- text or an attribute value in HTML.
* :func:`terminal_text` -- text printed to a terminal: control characters (ANSI escapes),
  line and paragraph separators and bidirectional overrides are shown as ``\\x1b``-style
  escapes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["TERMINAL_UNSAFE", "escape_script_json", "html_text", "plotly_text", "plotly_texts", "script_json", "terminal_text"]

_SCRIPT_SWAP = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})
_PLOTLY_SWAP = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;"})
#: Characters a terminal must not receive raw: C0/C1 controls (ANSI escapes, carriage return, bell),
#: line/paragraph separators and the bidirectional formatting characters ("Trojan Source").
TERMINAL_UNSAFE = frozenset(
    [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + list("\u2028\u2029")
    + list("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TERMINAL_SWAP = str.maketrans({
    c: _NAMED.get(c, f"\\x{ord(c):02x}" if ord(c) <= 0xFF else f"\\u{ord(c):04x}") for c in TERMINAL_UNSAFE
})


def escape_script_json(text: str) -> str:
    """Make serialised JSON safe to place inside an inline ``<script>`` element.

    Outside its strings JSON has none of ``<``, ``>``, ``&``, U+2028, U+2029; inside them
    the ``\\uXXXX`` escapes mean the same characters, so the value is unchanged while no
    ``</script>``, ``<!--`` or line separator can reach the HTML or JavaScript parser.

    Examples
    --------
    >>> escape_script_json('["</script><b>&"]')
    '["\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"]'
    """
    return text.translate(_SCRIPT_SWAP)


def script_json(value: Any, **dumps: Any) -> str:
    """``json.dumps(value)`` escaped for an inline ``<script>`` (see :func:`escape_script_json`).

    Examples
    --------
    >>> script_json({"id": "</script><script>alert(1)</script>"})
    '{"id": "\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
    >>> json.loads(script_json(["a\\u2028b"])) == ["a\\u2028b"]
    True
    """
    return escape_script_json(json.dumps(value, **dumps))


def plotly_text(value: Any) -> str:
    """``str(value)`` shown literally by plotly.js (labels, categories, hover text, legends, titles).

    plotly renders ``<b>``, ``<i>``, ``<br>``, ``<sup>``, ``<sub>``, ``<span style>``,
    ``<a href>`` and entities in text, and ``$...$`` as TeX when MathJax is loaded;
    ``&``, ``<``, ``>`` and ``$`` become entities, which plotly shows as those characters.
    The mapping is one to one, so distinct labels stay distinct categories. (plotly shows
    a newline as a space.)

    Examples
    --------
    >>> plotly_text('<a href="https://x.org">click</a> & $x$')
    '&lt;a href="https://x.org"&gt;click&lt;/a&gt; &amp; &#36;x&#36;'
    """
    return str(value).translate(_PLOTLY_SWAP)


def plotly_texts(values: Iterable[Any]) -> list[str]:
    """:func:`plotly_text` of every value (e.g. the category labels of a bar chart's axis).

    Examples
    --------
    >>> plotly_texts(["<b>", 3])
    ['&lt;b&gt;', '3']
    """
    return [plotly_text(v) for v in values]


def html_text(value: Any) -> str:
    """``str(value)`` escaped for HTML text and quoted attribute values.

    Examples
    --------
    >>> html_text("<img src=x onerror='alert(1)'>")
    '&lt;img src=x onerror=&#x27;alert(1)&#x27;&gt;'
    """
    return html.escape(str(value), quote=True)


def terminal_text(value: Any) -> str:
    """``str(value)`` safe to print: control characters (ANSI escapes, carriage returns, bells),
    line/paragraph separators and bidirectional overrides shown as escapes.

    Examples
    --------
    >>> terminal_text("red\\x1b[2J\\u202eevil\\nline")
    'red\\\\x1b[2J\\\\u202eevil\\\\nline'
    """
    return str(value).translate(_TERMINAL_SWAP)

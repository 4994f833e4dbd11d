"""Python highlighting keeps every character and colours tokens."""

from __future__ import annotations

import html
import re

from codeclab.web.highlight import diff_html, highlight_python

SOURCE = '''import numpy as np  # arrays

class Decoder:
    """Doc <with> & markup."""

    def decode(self, packet: bytes) -> list:
        text = """a
multi-line string"""
        return [len(packet) + 1, text, f"{packet!r}"]
'''


def plain(marked: str) -> str:
    lines = re.findall(r'<span class="line[^"]*">(.*?)</span>$', marked, re.M)
    return html.unescape(re.sub(r"<[^>]+>", "", "\n".join(lines)))


def test_highlighting_keeps_every_character() -> None:
    assert plain(highlight_python(SOURCE)) == SOURCE.rstrip("\n")


def test_tokens_get_their_classes() -> None:
    marked = highlight_python(SOURCE)
    assert '<span class="kw">class</span> <span class="def">Decoder</span>' in marked
    assert '<span class="com"># arrays</span>' in marked
    assert '<span class="num">1</span>' in marked
    assert '<span class="bi">len</span>' in marked
    assert "&lt;with&gt; &amp; markup" in marked
    assert "<with>" not in marked


def test_a_multi_line_string_is_coloured_on_each_line() -> None:
    lines = highlight_python(SOURCE).split("\n")
    assert any(line.startswith('<span class="line"><span class="str">multi-line') for line in lines)
    for line in lines:
        assert line.count("<span") == line.count("</span>")


def test_source_that_does_not_tokenize_is_still_shown() -> None:
    broken = 'x = """never closed\n<b>\n'
    assert plain(highlight_python(broken)) == broken.rstrip("\n")


def test_a_diff_counts_and_marks_lines() -> None:
    marked, added, removed = diff_html("a\nb\nc\n", "a\nB\nc\nd\n", "old.py", "new.py")
    assert (added, removed) == (2, 1)
    assert '<span class="line add">+B</span>' in marked
    assert '<span class="line del">-b</span>' in marked

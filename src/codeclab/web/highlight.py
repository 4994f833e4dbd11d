"""Python source as highlighted HTML, with Python's own tokenizer (no JavaScript needed).

Every character of the source is kept and escaped; tokens get ``<span class="...">``:
``kw`` keywords, ``bi`` builtins, ``str`` strings, ``num`` numbers, ``com`` comments, ``def``
the name after ``def``/``class``, ``op`` operators, ``dec`` decorators.  Each line is a
``<span class="line">`` (CSS numbers them); a token spanning lines (a docstring) is coloured
on each of its lines.  Source that does not tokenize is shown escaped without colours.
"""

from __future__ import annotations

import builtins
import difflib
import html
import io
import keyword
import tokenize
from collections.abc import Iterator

_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
_SKIP = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
_STRINGS = {tokenize.STRING} | {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def _classes(source: str) -> Iterator[tuple[int, int, int, int, str]]:
    """(start row, start col, end row, end col, css class) of each coloured token."""
    previous = ""
    for kind, text, (row0, col0), (row1, col1), line in tokenize.generate_tokens(
        io.StringIO(source).readline
    ):
        if kind in _SKIP:
            continue
        css = ""
        if kind == tokenize.COMMENT:
            css = "com"
        elif kind in _STRINGS:
            css = "str"
        elif kind == tokenize.NUMBER:
            css = "num"
        elif kind == tokenize.NAME:
            if previous in ("def", "class"):
                css = "def"
            elif text in _KEYWORDS:
                css = "kw"
            elif text in _BUILTINS:
                css = "bi"
        elif kind == tokenize.OP:
            css = "dec" if text == "@" and line.lstrip().startswith("@") else "op"
        if css:
            yield row0, col0, row1, col1, css
        previous = text


def highlight_python(source: str) -> str:
    """The source as HTML: one ``<span class="line">`` per line, tokens coloured."""
    lines = source.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        spans = list(_classes(source))
    except (tokenize.TokenError, SyntaxError):
        spans = []
    out: list[list[str]] = [[] for _ in lines]
    row, col = 1, 0  # where the text not yet written starts (rows are 1-based)

    def plain(to_row: int, to_col: int) -> None:
        nonlocal row, col
        while row < to_row:
            out[row - 1].append(html.escape(lines[row - 1][col:]))
            row, col = row + 1, 0
        if to_col > col:
            out[row - 1].append(html.escape(lines[row - 1][col:to_col]))
        col = max(col, to_col)

    for row0, col0, row1, col1, css in spans:
        if (row0, col0) < (row, col) or row1 > len(lines):
            continue
        plain(row0, col0)
        for r in range(row0, row1 + 1):
            start = col0 if r == row0 else 0
            end = col1 if r == row1 else len(lines[r - 1])
            if end > start:
                piece = html.escape(lines[r - 1][start:end])
                out[r - 1].append(f'<span class="{css}">{piece}</span>')
        row, col = row1, col1
    if lines:
        plain(len(lines), len(lines[-1]))
    return "\n".join(f'<span class="line">{"".join(parts)}</span>' for parts in out)


def diff_html(old: str, new: str, old_name: str, new_name: str) -> tuple[str, int, int]:
    """A unified diff as HTML lines (``add``/``del``/``hunk`` classes), lines added, removed."""
    added = removed = 0
    out: list[str] = []
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=3
    )
    for line in diff:
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css, added = "add", added + 1
        elif line.startswith("-"):
            css, removed = "del", removed + 1
        else:
            css = "ctx"
        out.append(f'<span class="line {css}">{html.escape(line)}</span>')
    return "\n".join(out), added, removed

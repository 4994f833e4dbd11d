"""Python source as highlighted HTML, with Python's own tokenizer (no JavaScript needed).

Every character of the source is kept and escaped; tokens get ``<span class="...">``:
``kw`` keywords, ``bi`` builtins, ``str`` strings, ``num`` numbers, ``com`` comments, ``def``
the name after ``def``/``class``, ``op`` operators, ``dec`` decorators.  Source that does not
tokenize (it should: it passed validation) is shown escaped without colours.  Lines are
wrapped in ``<span class="line">`` so CSS can number them.
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


def _classes(source: str) -> Iterator[tuple[int, int, int, int, str]]:
    """(start row, start col, end row, end col, css class) of each coloured token."""
    previous = ""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _SKIP:
            continue
        css = ""
        if token.type == tokenize.COMMENT:
            css = "com"
        elif token.type == tokenize.STRING or token.type in _FSTRING_TYPES:
            css = "str"
        elif token.type == tokenize.NUMBER:
            css = "num"
        elif token.type == tokenize.NAME:
            if previous in ("def", "class"):
                css = "def"
            elif keyword.iskeyword(token.string) or keyword.issoftkeyword(token.string):
                css = "kw"
            elif token.string in _BUILTINS:
                css = "bi"
        elif token.type == tokenize.OP:
            css = "dec" if token.string == "@" and token.line.lstrip().startswith("@") else "op"
        if css:
            yield (*token.start, *token.end, css)
        previous = token.string


_FSTRING_TYPES = {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


def highlight_python(source: str) -> str:
    """The source as HTML: one ``<span class="line">`` per line, tokens coloured."""
    lines = source.splitlines(keepends=True) or [""]
    try:
        spans = list(_classes(source))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        spans = []
    # character offsets of each line start, to turn (row, col) into offsets
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    out: list[str] = []
    position = 0
    for row0, col0, row1, col1, css in spans:
        begin = starts[row0 - 1] + col0
        end = starts[row1 - 1] + col1
        if begin < position:
            continue
        out.append(html.escape(source[position:begin]))
        out.append(f'<span class="{css}">{html.escape(source[begin:end])}</span>')
        position = end
    out.append(html.escape(source[position:]))
    return _wrap_lines("".join(out))


def _wrap_lines(marked: str) -> str:
    """Split highlighted HTML into lines, closing and reopening spans across newlines."""
    result: list[str] = []
    open_class: str | None = None
    for raw_line in marked.split("\n"):
        line = raw_line
        if open_class is not None:
            line = f'<span class="{open_class}">' + line
        # find whether a span is left open at the end of this line
        open_class = _unclosed_span(line)
        if open_class is not None:
            line += "</span>"
        result.append(f'<span class="line">{line}</span>')
    if result and result[-1] == '<span class="line"></span>':
        result.pop()
    return "\n".join(result)


def _unclosed_span(line: str) -> str | None:
    depth_classes: list[str] = []
    index = 0
    while True:
        opening = line.find('<span class="', index)
        closing = line.find("</span>", index)
        if opening == -1 and closing == -1:
            break
        if opening != -1 and (closing == -1 or opening < closing):
            end = line.index('">', opening)
            depth_classes.append(line[opening + len('<span class="') : end])
            index = end + 2
        else:
            if depth_classes:
                depth_classes.pop()
            index = closing + len("</span>")
    return depth_classes[-1] if depth_classes else None


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

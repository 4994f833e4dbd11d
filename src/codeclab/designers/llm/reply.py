"""Reading a model's reply: the rationale, then a full module or SEARCH/REPLACE edits.

Accepted shapes (see ``prompts/system.md``)::

    RATIONALE: why this codec should do better
    ```python
    <the whole module>
    ```

or::

    RATIONALE: ...
    PARENT: exp-12
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE

Edits apply exactly: each SEARCH text must match whole lines of the parent exactly once. A
block that does not apply is an `EditError` naming the block and why; a reply with neither code
nor edits is a `ReplyError`. Both messages are written to be sent back to the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NO_RATIONALE = "(no rationale given)"

_MAX_RATIONALE_CHARS = 1_500
_RATIONALE = re.compile(r"^[\s*#>_-]*rationale[\s*_]*(?::|$)[\s*_]*(?P<text>.*)$", re.IGNORECASE)
_PARENT = re.compile(r"^[\s*#>_-]*parent[\s*_]*:[\s*_]*`?(?P<id>[^`\s*]+)`?[\s*_]*$", re.IGNORECASE)
_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+.-]*)\s*$")
_PYTHON_LANGS = frozenset({"", "python", "py", "python3"})


class ReplyError(ValueError):
    """The reply holds nothing usable; the message says what was expected."""


class EditError(ReplyError):
    """SEARCH/REPLACE edits that do not apply; `problems` names each failing block."""

    def __init__(self, parent: str, problems: Sequence[str]) -> None:
        self.parent = parent
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [
            f"{count} edit block{'s' if count != 1 else ''} did not apply to `{parent}`, so no "
            "edit was applied (send the complete set of edits again, or a full module):",
            *(f"- {problem}" for problem in self.problems),
        ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Edit:
    """One SEARCH/REPLACE block; `number` counts blocks in the reply from 1."""

    number: int
    search: str
    replace: str


@dataclass(frozen=True)
class Reply:
    """What a reply proposes: exactly one of `module` and `edits` is set."""

    rationale: str
    module: str | None = None
    edits: tuple[Edit, ...] = ()
    parent: str | None = None
    """The id named on a ``PARENT:`` line, if any."""


def parse_reply(text: str) -> Reply:
    """Read `text`; raise `ReplyError` when it holds neither a module nor edits."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    rationale = _rationale(lines)
    parent = _parent(lines)
    if any(_SEARCH.match(line) for line in lines):
        return Reply(rationale, edits=_edits(lines), parent=parent)
    return Reply(rationale, module=_module(lines), parent=parent)


def _rationale(lines: list[str]) -> str:
    for index, line in enumerate(lines):
        match = _RATIONALE.match(line)
        if match is None:
            continue
        parts = [match["text"].strip()]
        for following in lines[index + 1 :]:
            if not following.strip() and any(parts):
                break
            if _FENCE.match(following) or _PARENT.match(following) or _SEARCH.match(following):
                break
            parts.append(following.strip())
        text = " ".join(part for part in parts if part).strip()
        if text:
            return _clip(text)
    # No RATIONALE line: the prose before the first code or edit block, if any.
    prose: list[str] = []
    for line in lines:
        if _FENCE.match(line) or _SEARCH.match(line) or _PARENT.match(line):
            break
        prose.append(line.strip())
    text = " ".join(part for part in prose if part).strip()
    return _clip(text) if text else NO_RATIONALE


def _clip(text: str) -> str:
    if len(text) <= _MAX_RATIONALE_CHARS:
        return text
    return text[: _MAX_RATIONALE_CHARS - 3] + "..."


def _parent(lines: list[str]) -> str | None:
    for line in lines:
        match = _PARENT.match(line)
        if match is not None:
            return match["id"]
    return None


def _edits(lines: list[str]) -> tuple[Edit, ...]:
    edits: list[Edit] = []
    index = 0
    while index < len(lines):
        if not _SEARCH.match(lines[index]):
            index += 1
            continue
        number = len(edits) + 1
        start = index + 1
        divider = _find(lines, start, _DIVIDER, _SEARCH, _REPLACE)
        if divider is None:
            raise ReplyError(
                f"edit block {number} (starting at line {index + 1} of your reply) has no "
                "'=======' line between its SEARCH and REPLACE parts"
            )
        end = _find(lines, divider + 1, _REPLACE, _SEARCH, _DIVIDER)
        if end is None:
            raise ReplyError(
                f"edit block {number} (starting at line {index + 1} of your reply) is not closed "
                "by a '>>>>>>> REPLACE' line (was the reply cut off?)"
            )
        edits.append(Edit(number, _joined(lines[start:divider]), _joined(lines[divider + 1 : end])))
        index = end + 1
    return tuple(edits)


def _find(
    lines: list[str], start: int, wanted: re.Pattern[str], *stops: re.Pattern[str]
) -> int | None:
    """Index of the first line from `start` matching `wanted`, None if a stop comes first."""
    for index in range(start, len(lines)):
        if wanted.match(lines[index]):
            return index
        if any(stop.match(lines[index]) for stop in stops):
            return None
    return None


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _module(lines: list[str]) -> str:
    blocks: list[str] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, lang = opening["fence"], opening["lang"].lower()
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((i for i in range(index + 1, len(lines)) if closing.match(lines[i])), None)
        if end is None:
            if lang in _PYTHON_LANGS:
                raise ReplyError(
                    f"the code block opened at line {index + 1} of your reply is never closed "
                    f"with {fence} (was the reply cut off at the token limit?)"
                )
            break
        if lang in _PYTHON_LANGS:
            blocks.append(_joined(lines[index + 1 : end]))
        index = end + 1
    if not blocks:
        raise ReplyError(
            "the reply holds neither a ```python code block with the complete module nor "
            "SEARCH/REPLACE edit blocks ('<<<<<<< SEARCH' ... '=======' ... '>>>>>>> REPLACE')"
        )
    codecs = [block for block in blocks if re.search(r"^class\s+Encoder\b", block, re.M)]
    return max(codecs or blocks, key=len)


def apply_edits(source: str, edits: Sequence[Edit], *, parent: str) -> str:
    """`source` with `edits` applied in order; `EditError` if any block does not apply.

    A SEARCH text must match whole lines, exactly once (overlapping matches count), in the
    text as changed by the blocks before it. Nothing is applied unless every block applies.
    """
    text = source if source.endswith("\n") else source + "\n"
    problems: list[str] = []
    for edit in edits:
        if not edit.search.strip():
            problems.append(
                f"block {edit.number}: its SEARCH part is empty; quote the lines to replace"
            )
            continue
        positions = _line_matches(text, edit.search)
        if len(positions) == 1:
            at = positions[0]
            text = text[:at] + edit.replace + text[at + len(edit.search) :]
        elif positions:
            lines = ", ".join(str(text.count("\n", 0, at) + 1) for at in positions)
            problems.append(
                f"block {edit.number}: its SEARCH text matches {len(positions)} places in "
                f"`{parent}` (at lines {lines}); add surrounding lines so it matches exactly once"
            )
        else:
            problems.append(f"block {edit.number}: {_why_missing(text, edit.search, parent)}")
    if problems:
        raise EditError(parent, problems)
    return text


def _line_matches(text: str, search: str) -> list[int]:
    """Start offsets where `search` matches at the start of a line (overlaps included)."""
    found: list[int] = []
    start = text.find(search)
    while start != -1:
        if start == 0 or text[start - 1] == "\n":
            found.append(start)
        start = text.find(search, start + 1)
    return found


def _why_missing(text: str, search: str, parent: str) -> str:
    wanted = [line.strip() for line in search.split("\n")[:-1]]
    have = [line.strip() for line in text.split("\n")]
    for start in range(len(have) - len(wanted) + 1):
        if have[start : start + len(wanted)] == wanted:
            return (
                f"its SEARCH text is not in `{parent}` exactly; it matches line {start + 1} "
                "onwards only when indentation and trailing spaces are ignored: copy the lines "
                "exactly, indentation included"
            )
    present = set(have)
    for number, line in enumerate(wanted, start=1):
        if line and line not in present:
            return (
                f"its SEARCH text is not in `{parent}`: its line {number} ({_quote(line)}) "
                "appears nowhere in it"
            )
    return (
        f"its SEARCH text is not in `{parent}`: each of its lines exists there, but not in this "
        "order as consecutive lines"
    )


def _quote(line: str, limit: int = 80) -> str:
    shown = line if len(line) <= limit else line[: limit - 3] + "..."
    return repr(shown)

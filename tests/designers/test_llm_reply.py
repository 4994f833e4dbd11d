"""Reading model replies and applying SEARCH/REPLACE edits exactly."""

from __future__ import annotations

import pytest

from codeclab.designers.llm.reply import (
    NO_RATIONALE,
    Edit,
    EditError,
    ReplyError,
    apply_edits,
    parse_reply,
)

PARENT = """import zlib


class Encoder:
    def __init__(self, width, height, fps, params):
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes(), self.level)


class Decoder:
    def __init__(self, width, height, fps):
        self.level = 6
"""


def edit_block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_full_module_reply_gives_module_and_rationale() -> None:
    reply = parse_reply(f"RATIONALE: zlib at level 9 saves bits.\n\n```python\n{PARENT}```\n")

    assert reply.module == PARENT
    assert reply.rationale == "zlib at level 9 saves bits."
    assert reply.edits == ()


def test_rationale_accepts_markdown_heading_and_bold_forms() -> None:
    heading = parse_reply(f"## Rationale\nSmaller blocks\nadapt better.\n\n```python\n{PARENT}```")
    bold = parse_reply(f"**Rationale:** bigger search range\n```py\n{PARENT}```")

    assert heading.rationale == "Smaller blocks adapt better."
    assert bold.rationale == "bigger search range"


def test_reply_without_rationale_line_uses_the_prose_before_the_code() -> None:
    assert parse_reply(f"I raise the level.\n```python\n{PARENT}```").rationale == (
        "I raise the level."
    )
    assert parse_reply(f"```python\n{PARENT}```").rationale == NO_RATIONALE


def test_among_several_code_blocks_the_codec_module_is_chosen() -> None:
    text = f"RATIONALE: x\n```python\nprint('usage example')\n```\n```python\n{PARENT}```\n"

    assert parse_reply(text).module == PARENT


def test_edit_reply_gives_blocks_in_order_and_the_parent() -> None:
    text = (
        "RATIONALE: stronger compression\nPARENT: exp-3\n"
        + edit_block("        self.level = 6\n", "        self.level = 9\n")
        + edit_block("import zlib\n", "import zlib\nimport math\n")
    )

    reply = parse_reply(text)

    assert reply.parent == "exp-3"
    assert reply.module is None
    assert reply.edits == (
        Edit(1, "        self.level = 6\n", "        self.level = 9\n"),
        Edit(2, "import zlib\n", "import zlib\nimport math\n"),
    )


def test_edits_wrapped_in_a_code_fence_are_still_edits() -> None:
    text = "PARENT: `exp-3`\n```python\n" + edit_block("import zlib\n", "import lzma\n") + "```\n"

    reply = parse_reply(text)

    assert reply.parent == "exp-3"
    assert reply.edits == (Edit(1, "import zlib\n", "import lzma\n"),)


def test_reply_with_neither_code_nor_edits_is_a_reply_error() -> None:
    with pytest.raises(ReplyError, match="neither a ```python code block"):
        parse_reply("I would use a wavelet transform here.")


def test_unclosed_code_block_says_the_reply_may_be_cut_off() -> None:
    with pytest.raises(ReplyError, match=r"never closed.*cut off"):
        parse_reply(f"RATIONALE: x\n```python\n{PARENT}")


def test_edit_block_without_divider_names_the_block() -> None:
    text = "<<<<<<< SEARCH\nimport zlib\n>>>>>>> REPLACE\n"

    with pytest.raises(ReplyError, match=r"edit block 1 .* no '=======' line"):
        parse_reply(text)


def test_edit_block_without_replace_marker_names_the_block() -> None:
    text = edit_block("import zlib\n", "import lzma\n") + "<<<<<<< SEARCH\nx\n=======\ny\n"

    with pytest.raises(ReplyError, match=r"edit block 2 .* not closed"):
        parse_reply(text)


def test_edits_apply_in_order_each_to_the_result_of_the_previous() -> None:
    edits = [
        Edit(
            1,
            "        self.level = 6\n\n    def encode",
            "        self.level = 9\n\n    def encode",
        ),
        Edit(2, "        self.level = 9\n", "        self.level = 8\n"),
    ]

    result = apply_edits(PARENT, edits, parent="exp-3")

    assert result == PARENT.replace(
        "self.level = 6\n\n    def encode", "self.level = 8\n\n    def encode"
    )


def test_search_text_matching_twice_is_an_edit_error_naming_block_and_lines() -> None:
    edits = [Edit(1, "import zlib\n", "import zlib\n"), Edit(2, "        self.level = 6\n", "")]

    with pytest.raises(EditError) as caught:
        apply_edits(PARENT, edits, parent="exp-3")

    assert caught.value.problems == (
        "block 2: its SEARCH text matches 2 places in `exp-3` (at lines 6, 14); add surrounding "
        "lines so it matches exactly once",
    )


def test_search_text_not_found_names_the_missing_line() -> None:
    with pytest.raises(
        EditError, match=r"block 1: .*line 1 \('self.quality = 3'\) appears nowhere"
    ):
        apply_edits(PARENT, [Edit(1, "self.quality = 3\n", "")], parent="exp-3")


def test_search_text_with_wrong_indentation_gets_an_indentation_hint() -> None:
    with pytest.raises(EditError, match="only when indentation and trailing spaces are ignored"):
        apply_edits(PARENT, [Edit(1, "self.level = 6\n", "self.level = 7\n")], parent="p")


def test_search_must_match_whole_lines() -> None:
    with pytest.raises(EditError, match="block 1"):
        apply_edits(PARENT, [Edit(1, "level = 6\n", "level = 7\n")], parent="p")


def test_nothing_is_applied_when_one_block_fails() -> None:
    edits = [Edit(1, "import zlib\n", "import lzma\n"), Edit(2, "missing\n", "")]

    with pytest.raises(EditError) as caught:
        apply_edits(PARENT, edits, parent="p")

    assert len(caught.value.problems) == 1
    assert "no edit was applied" in str(caught.value)


def test_overlapping_matches_count_as_ambiguous() -> None:
    source = "x = 1\nx = 1\nx = 1\n"

    with pytest.raises(EditError, match="matches 2 places"):
        apply_edits(source, [Edit(1, "x = 1\nx = 1\n", "y = 2\n")], parent="p")


def test_empty_search_is_an_edit_error() -> None:
    with pytest.raises(EditError, match="SEARCH part is empty"):
        apply_edits(PARENT, [Edit(1, "", "import os\n")], parent="p")


def test_crlf_replies_are_read_like_lf() -> None:
    text = ("PARENT: p\r\n" + edit_block("import zlib\n", "import lzma\n")).replace("\n", "\r\n")

    reply = parse_reply(text)

    assert apply_edits(PARENT, reply.edits, parent="p").startswith("import lzma\n")

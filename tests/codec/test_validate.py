"""Static validation of codec source: every rule rejects a minimal bad codec at the right line."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import types
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

import codeclab
from codeclab.codec.contract import (
    ALLOWED_AFTER_BANNED,
    CODEC_CONTRACT,
    MAX_DISPLAY_ELEMENTS,
    MAX_LITERAL_BYTES,
    MAX_LITERAL_PAYLOAD_BYTES,
    MAX_SOURCE_BYTES,
    OPTIONAL_MODULES,
    allowed_modules,
)
from codeclab.codec.validate import (
    CodecRejected,
    ValidationReport,
    Violation,
    banned_attribute,
    validate_bytes,
    validate_source,
)

REFERENCE_CODECS = Path(codeclab.__file__).resolve().parent / "codecs"

MINIMAL_CODEC = '''\
"""A minimal valid codec: every frame is stored raw (see Encoder.__init__)."""
import numpy as np


class Encoder:
    def __init__(self, width, height, fps, params):
        self.size = width * height

    def encode(self, y, u, v):
        return y.tobytes() + u.tobytes() + v.tobytes()


class Decoder:
    def __init__(self, width, height, fps):
        self.width, self.height = width, height

    def decode(self, packet):
        w, h = self.width, self.height
        cw, ch = (w + 1) // 2, (h + 1) // 2
        data = np.frombuffer(packet, dtype=np.uint8)
        y = data[: w * h].reshape(h, w)
        u = data[w * h : w * h + cw * ch].reshape(ch, cw)
        v = data[w * h + cw * ch :].reshape(ch, cw)
        return [(y, u, v)]
'''
FIRST_APPENDED_LINE = MINIMAL_CODEC.count("\n") + 1


def with_snippet(snippet: str) -> str:
    """The minimal codec with `snippet` appended; its first line is FIRST_APPENDED_LINE."""
    return MINIMAL_CODEC + snippet


def found(report: ValidationReport) -> set[tuple[str, int | None]]:
    return {(v.rule, v.line) for v in report.violations}


def listing(report: ValidationReport) -> str:
    return "\n".join(str(v) for v in report.violations) or "(no violations)"


def big_bytes_literal(size: int) -> str:
    return "b'" + "ab" * (size // 2) + "'"


# --- codecs that must pass ---------------------------------------------------------------------


def test_minimal_codec_passes() -> None:
    report = validate_source(MINIMAL_CODEC)
    assert report.ok, listing(report)


@pytest.mark.parametrize("name", ["intra_dct", "inter_dct"])
def test_reference_codec_passes(name: str) -> None:
    path = REFERENCE_CODECS / f"{name}.py"
    report = validate_source(path.read_text(encoding="utf-8"), filename=path.name)
    assert report.ok, listing(report)


@pytest.mark.parametrize(
    "snippet",
    [
        pytest.param("from numpy.lib.stride_tricks import sliding_window_view\n", id="from-stride"),
        pytest.param("w = np.lib.stride_tricks.sliding_window_view(x, 3)\n", id="np-lib-stride"),
        pytest.param("import numpy.linalg\nimport collections.abc\n", id="submodules"),
        pytest.param("import numpy.typing as npt\nfrom typing import Literal\n", id="typing"),
        pytest.param('if __name__ == "__main__":\n    print(1)\n', id="main-guard"),
        pytest.param("ok = hasattr(x, 'shape') and type(x) is int\n", id="hasattr-type-1arg"),
        pytest.param("def f(m: Literal['fast mode']) -> 'Encoder': ...\n", id="literal-annotation"),
        pytest.param("class CodecError(ValueError):\n    pass\n", id="exception-base"),
        pytest.param(
            "class A:\n    __slots__ = ('a',)\n\n    def __len__(self):\n        return 1\n"
            "\n\nclass B(A):\n    pass\n",
            id="module-base-dunder-method",
        ),
        pytest.param("m = memoryview(b'ab')\n", id="memoryview"),
        pytest.param(
            "t = [" + ", ".join(["1"] * MAX_DISPLAY_ELEMENTS) + "]\n", id="display-at-limit"
        ),
        pytest.param("s = " + big_bytes_literal(MAX_LITERAL_BYTES) + "\n", id="literal-at-limit"),
        pytest.param("zero = b'\\0' * 10_000_000\n", id="repetition"),
    ],
)
def test_harmless_code_passes(snippet: str) -> None:
    report = validate_source(with_snippet(snippet))
    assert report.ok, listing(report)


# --- one bad codec per rule ----------------------------------------------------------------

BAD_SNIPPETS = [
    # import
    pytest.param("import os\n", "import", 0, id="import-os"),
    pytest.param("from os import path\n", "import", 0, id="from-os-import-path"),
    pytest.param("import importlib\n", "import", 0, id="import-importlib"),
    pytest.param("import ctypes\n", "import", 0, id="import-ctypes"),
    pytest.param("import pickle\n", "import", 0, id="import-pickle"),
    pytest.param("import math, subprocess\n", "import", 0, id="second-of-two"),
    pytest.param("from . import x\n", "import", 0, id="relative"),
    pytest.param("from numpy import *\n", "import", 0, id="star"),
    pytest.param("from __future__ import annotations\n", "import", 0, id="future"),
    pytest.param("import numpy.ctypeslib\n", "import", 0, id="numpy-ctypeslib"),
    pytest.param("import numpy.lib\n", "import", 0, id="numpy-lib"),
    pytest.param("from numpy.lib import format\n", "import", 0, id="numpy-lib-format"),
    pytest.param("from numpy import load\n", "import", 0, id="from-numpy-import-load"),
    pytest.param("import numpy._core\n", "import", 0, id="private-submodule"),
    pytest.param("from typing import get_type_hints\n", "import", 0, id="get-type-hints"),
    # banned-name
    pytest.param("c = getattr(x, '__class__')\n", "banned-name", 0, id="getattr"),
    pytest.param("f = __builtins__['open']\n", "banned-name", 0, id="builtins-subscript"),
    pytest.param("eval('1 + 1')\n", "banned-name", 0, id="eval"),
    pytest.param("exec('x = 1')\n", "banned-name", 0, id="exec"),
    pytest.param("f = open('/etc/passwd')\n", "banned-name", 0, id="open"),
    pytest.param("code = compile('1', 'f', 'eval')\n", "banned-name", 0, id="compile"),
    pytest.param("g = globals()\n", "banned-name", 0, id="globals"),
    pytest.param("setattr(x, 'a', 1)\n", "banned-name", 0, id="setattr"),
    pytest.param("m = __import__('os')\n", "banned-name", 0, id="dunder-import"),
    pytest.param("here = __file__\n", "banned-name", 0, id="dunder-file"),
    pytest.param("K = type('K', (), {})\n", "banned-name", 0, id="type-3-args"),
    pytest.param("make = type\n", "banned-name", 0, id="type-alias"),
    pytest.param("def __getattr__(name):\n    pass\n", "banned-name", 0, id="module-dunder-def"),
    pytest.param(
        "class P:\n    def __reduce__(self):\n        return (print, ())\n",
        "banned-name",
        1,
        id="pickle-hook",
    ),
    pytest.param("def f(__x__):\n    pass\n", "banned-name", 0, id="dunder-argument"),
    pytest.param(
        "class P:\n    @property\n    def __array_interface__(self):\n        return {}\n",
        "banned-name",
        2,
        id="array-interface-method",
    ),
    pytest.param(
        "class P:\n    def __getattr__(self, name):\n        return {}\n",
        "banned-name",
        1,
        id="getattr-hook",
    ),
    pytest.param(
        "class P:\n    __array_interface__ = {}\n", "banned-name", 1, id="array-interface-attribute"
    ),
    pytest.param("import math as __builtins__\n", "banned-name", 0, id="dunder-alias"),
    # dunder-attribute
    pytest.param(
        "s = ().__class__.__bases__[0].__subclasses__()\n", "dunder-attribute", 0, id="subclasses"
    ),
    pytest.param(
        "class E(Encoder):\n    def __init__(self):\n        super().__init__(1, 2, 3, {})\n",
        "dunder-attribute",
        2,
        id="super-init",
    ),
    pytest.param("g = f.__globals__\n", "dunder-attribute", 0, id="globals-attribute"),
    pytest.param(
        "match x:\n    case object(__class__=k):\n        pass\n",
        "dunder-attribute",
        1,
        id="match-class-attribute",
    ),
    # introspection-attribute
    pytest.param("f = g.gi_frame.f_back\n", "introspection-attribute", 0, id="gi-frame"),
    pytest.param("b = tb.tb_frame\n", "introspection-attribute", 0, id="tb-frame"),
    # banned-attribute
    pytest.param("a = np.load('x', allow_pickle=True)\n", "banned-attribute", 0, id="np-load"),
    pytest.param("m = np\nm.save('x', a)\n", "banned-attribute", 1, id="np-save-aliased"),
    pytest.param("a.tofile('x')\n", "banned-attribute", 0, id="tofile"),
    pytest.param("a = np.memmap('x')\n", "banned-attribute", 0, id="memmap"),
    pytest.param("p = np.ctypeslib\n", "banned-attribute", 0, id="ctypeslib"),
    pytest.param("p = a.ctypes.data\n", "banned-attribute", 0, id="ndarray-ctypes"),
    pytest.param("f = np.lib.format\n", "banned-attribute", 0, id="np-lib"),
    pytest.param("s = np.lib.stride_tricks.as_strided\n", "banned-attribute", 0, id="as-strided"),
    pytest.param(
        "import dataclasses\nsys = dataclasses.sys\n", "banned-attribute", 1, id="re-export"
    ),
    pytest.param("import lzma\nf = lzma.open('x')\n", "banned-attribute", 1, id="lzma-open"),
    pytest.param("x.system('id')\n", "banned-attribute", 0, id="system"),
    pytest.param("x.execv('/bin/sh', [])\n", "banned-attribute", 0, id="execv"),
    pytest.param("x.posix_spawn('/bin/sh', [], {})\n", "banned-attribute", 0, id="spawn"),
    # private-attribute
    pytest.param("c = np._core\n", "private-attribute", 0, id="private-module-member"),
    pytest.param(
        "import dataclasses\nd = dataclasses\nf = d._create_fn('f', [], ['return 1'])\n",
        "private-attribute",
        2,
        id="private-through-alias",
    ),
    pytest.param("def f(self):\n    return self._cache\n", "private-attribute", 1, id="own"),
    pytest.param(
        "import functools\n@functools.singledispatch\ndef f(x):\n    pass\n",
        "banned-attribute",
        1,
        id="singledispatch",
    ),
    # dunder-string
    pytest.param("name = '__subclasses__'\n", "dunder-string", 0, id="dunder-string"),
    pytest.param("s = '{0.__class__}'.format(x)\n", "dunder-string", 0, id="format-field"),
    # string-annotation
    pytest.param(
        "def f(x: \"__import__('os').system('id')\"):\n    pass\n",
        "banned-name",
        0,
        id="code-in-annotation",
    ),
    pytest.param(
        "def f(x: 'not ( valid'):\n    pass\n", "string-annotation", 0, id="bad-annotation"
    ),
    # literal-size
    pytest.param(
        "blob = " + big_bytes_literal(20 * 1024) + "\n", "literal-size", 0, id="bytes-20k"
    ),
    pytest.param(
        "table = [" + ", ".join(["7"] * 10_000) + "]\n", "literal-size", 0, id="list-10000"
    ),
    pytest.param(
        "pairs = {" + ", ".join(f"{i}: 0" for i in range(5000)) + "}\n",
        "literal-size",
        0,
        id="dict-5000",
    ),
    pytest.param("n = 0x" + "f" * 40_000 + "\n", "literal-size", 0, id="int-20k"),
    pytest.param("s = f'{x}" + "a" * 20_000 + "'\n", "literal-size", 0, id="fstring-20k"),
    pytest.param(
        "s = 'x' + " + big_bytes_literal(10_000)[1:] + " + " + big_bytes_literal(10_000)[1:] + "\n",
        "literal-size",
        0,
        id="concatenation-20k",
    ),
    pytest.param(
        "".join(f"p{i} = {big_bytes_literal(12 * 1024)}\n" for i in range(6)),
        "literal-size",
        5,
        id="many-literals-72k",
    ),
    # class-definition
    pytest.param("class K(metaclass=M):\n    pass\n", "class-definition", 0, id="metaclass"),
    pytest.param("class K(np.ndarray):\n    pass\n", "class-definition", 0, id="foreign-base"),
    pytest.param("class K(*bases):\n    pass\n", "class-definition", 0, id="starred-base"),
    # syntax
    pytest.param("def broken(:\n", "syntax", 0, id="syntax-error"),
]


@pytest.mark.parametrize(("snippet", "rule", "line_in_snippet"), BAD_SNIPPETS)
def test_bad_codec_is_rejected_with_rule_and_line(
    snippet: str, rule: str, line_in_snippet: int
) -> None:
    report = validate_source(with_snippet(snippet))
    assert (rule, FIRST_APPENDED_LINE + line_in_snippet) in found(report), listing(report)


def test_all_violations_are_reported_sorted_by_line() -> None:
    source = with_snippet("import os\nx = eval('1')\ny = z.__dict__\n")
    report = validate_source(source)
    line = FIRST_APPENDED_LINE
    assert [(v.rule, v.line) for v in report.violations] == [
        ("import", line),
        ("banned-name", line + 1),
        ("dunder-attribute", line + 2),
    ]


def test_violation_names_the_column_of_the_attribute_in_characters() -> None:
    report = validate_source(with_snippet("é = 'ü' + x.__dict__\n"))
    (violation,) = report.violations
    assert (violation.line, violation.col) == (FIRST_APPENDED_LINE, 13)


def test_import_message_names_the_module_and_the_allow_list() -> None:
    report = validate_source(with_snippet("import os\n"))
    (violation,) = report.violations
    assert "'os'" in violation.message
    assert "numpy" in violation.message and "zlib" in violation.message


def test_aggregate_literal_limit_points_where_it_is_crossed() -> None:
    per_literal = MAX_LITERAL_BYTES - 1024
    count = MAX_LITERAL_PAYLOAD_BYTES // per_literal + 1
    snippet = "".join(f"p{i} = {big_bytes_literal(per_literal)}\n" for i in range(count))
    report = validate_source(with_snippet(snippet))
    (violation,) = [v for v in report.violations if v.rule == "literal-size"]
    assert violation.line == FIRST_APPENDED_LINE + count - 1
    assert str(MAX_LITERAL_PAYLOAD_BYTES) in violation.message


def test_deep_but_parseable_nesting_is_checked_without_recursion() -> None:
    report = validate_source(with_snippet("x = a" + " + eval(1)" * 2000 + "\n"))
    assert len([v for v in report.violations if v.rule == "banned-name"]) == 2000


def test_nesting_too_deep_to_parse_is_a_syntax_violation() -> None:
    report = validate_source(with_snippet("x = a" + "._b" * 50_000 + "\n"))
    (violation,) = report.violations
    assert violation.rule == "syntax"
    assert "nested too deeply" in violation.message


def test_validation_does_not_run_the_code() -> None:
    report = validate_source(with_snippet("raise SystemExit('executed')\n"))
    assert report.ok, listing(report)


# --- syntax, encoding, size --------------------------------------------------------------------


def test_syntax_error_reports_its_line_and_column() -> None:
    report = validate_source("x = 1\ny = (2 +\n", filename="codec.py")
    (violation,) = report.violations
    assert (violation.rule, violation.line, violation.col) == ("syntax", 2, 5)
    assert "codec.py does not parse" in violation.message


def test_nul_character_is_a_syntax_violation_with_position() -> None:
    report = validate_source(with_snippet("x = 1\x00\n"))
    (violation,) = report.violations
    assert (violation.rule, violation.line, violation.col) == ("syntax", FIRST_APPENDED_LINE, 6)


def test_non_utf8_bytes_are_a_syntax_violation_with_position() -> None:
    data = with_snippet("s = 'caf").encode() + b"\xe9'\n"
    report = validate_bytes(data, filename="codec.py")
    (violation,) = report.violations
    assert (violation.rule, violation.line, violation.col) == ("syntax", FIRST_APPENDED_LINE, 9)
    assert "codec.py is not UTF-8" in violation.message
    assert report.sha256 == hashlib.sha256(data).hexdigest()


def test_lone_surrogate_is_a_syntax_violation() -> None:
    report = validate_source(with_snippet("s = '\udc80'\n"))
    assert found(report) == {("syntax", FIRST_APPENDED_LINE)}


def test_valid_bytes_validate_like_the_text() -> None:
    assert validate_bytes(MINIMAL_CODEC.encode()) == validate_source(MINIMAL_CODEC)


@pytest.mark.parametrize(
    ("cookie", "ok"),
    [
        pytest.param("# -*- coding: latin-1 -*-\n", False, id="latin-1"),
        pytest.param("# coding=unicode_escape\n", False, id="unicode-escape"),
        pytest.param("# -*- coding: utf-8 -*-\n", True, id="utf-8"),
    ],
)
def test_coding_declaration_must_be_utf8(cookie: str, ok: bool) -> None:
    report = validate_source(cookie + MINIMAL_CODEC)
    assert report.ok is ok, listing(report)
    if not ok:
        assert found(report) == {("syntax", 1)}


def test_oversized_source_is_a_size_violation_and_still_checked() -> None:
    padding = "# " + "x" * 100 + "\n"
    source = with_snippet("import os\n") + padding * (MAX_SOURCE_BYTES // len(padding) + 1)
    report = validate_source(source)
    assert found(report) == {("size", None), ("import", FIRST_APPENDED_LINE)}
    assert f"{len(source)} bytes" in report.violations[0].message


def test_source_far_over_the_limit_is_not_parsed() -> None:
    source = "x = (\n" + "# pad\n" * MAX_SOURCE_BYTES
    report = validate_source(source)
    assert [v.rule for v in report.violations] == ["size"]
    assert "nothing else was checked" in report.violations[0].message


# --- contract ------------------------------------------------------------------------------


def contract_messages(source: str) -> list[str]:
    return [v.message for v in validate_source(source).violations if v.rule == "contract"]


def replaced(old: str, new: str) -> str:
    assert old in MINIMAL_CODEC
    return MINIMAL_CODEC.replace(old, new)


def test_encode_arity_is_reported_with_the_contract() -> None:
    messages = contract_messages(replaced("def encode(self, y, u, v)", "def encode(self, y, u)"))
    assert messages == [
        "Encoder.encode takes 2 positional arguments after self, the contract passes 3 (y, u, v)"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("class Encoder:", "class Coder:", "no top-level class Encoder", id="no-enc"),
        pytest.param("class Decoder:", "class Dec:", "no top-level class Decoder", id="no-dec"),
        pytest.param(
            "def decode(self, packet)", "def decode(self)", "Decoder.decode takes 0", id="decode-0"
        ),
        pytest.param(
            "def __init__(self, width, height, fps, params)",
            "def __init__(self, width, height, fps, params, extra)",
            "Encoder.__init__ requires 5 positional arguments",
            id="init-extra-required",
        ),
        pytest.param(
            "def decode(self, packet)",
            "def decode(self, packet, *, strict)",
            "keyword-only argument 'strict' without a default",
            id="kwonly-required",
        ),
        pytest.param(
            "def decode(self, packet)",
            "def decode()",
            "takes no arguments, not even self",
            id="no-self",
        ),
        pytest.param(
            "    def encode(self, y, u, v):",
            "    @staticmethod\n    def encode(self, y, u, v):",
            "decorators are not allowed",
            id="decorated",
        ),
        pytest.param(
            "def decode(self, packet)",
            "async def decode(self, packet)",
            "must not be async",
            id="async",
        ),
        pytest.param(
            "    def decode(self, packet):",
            "    decode = print\n\n    def _decode(self, packet):",
            "Decoder.decode is assigned, not defined with def",
            id="assigned-method",
        ),
        pytest.param(
            "class Decoder:",
            "Encoder = None\n\n\nclass Decoder:",
            "Encoder is rebound",
            id="rebound",
        ),
        pytest.param(
            "class Decoder:",
            "if True:\n    class Encoder:\n        pass\n\n\nclass Decoder:",
            "defined inside a block",
            id="class-in-block",
        ),
        pytest.param(
            "class Decoder:",
            "def f():\n    global Decoder\n    Decoder = None\n\n\nclass Decoder:",
            "Decoder is rebound",
            id="global-rebind",
        ),
    ],
)
def test_contract_violation(old: str, new: str, expected: str) -> None:
    messages = contract_messages(replaced(old, new))
    assert any(expected in message for message in messages), messages


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "def encode(self, y, u, v)",
            "def encode(self, y, u, v, extra=None, *rest, **kw)",
            id="extra-defaults",
        ),
        pytest.param("def decode(self, packet)", "def decode(self, *packets)", id="star-args"),
        pytest.param("def decode(self, packet)", "def decode(self, packet, /)", id="pos-only"),
        pytest.param(
            "class Decoder:",
            "class _Base:\n    def decode(self, packet):\n        return []\n\n\n"
            "class Decoder(_Base):",
            id="inherited-from-module-class",
        ),
        pytest.param(
            "        return y.tobytes() + u.tobytes() + v.tobytes()\n",
            "        return y.tobytes() + u.tobytes() + v.tobytes()\n\n"
            "    def flush(self):\n        return []\n",
            id="optional-flush",
        ),
    ],
)
def test_contract_accepts(old: str, new: str) -> None:
    assert contract_messages(replaced(old, new)) == []


def test_method_resolution_follows_python_order() -> None:
    bases = (
        "class A:\n    def decode(self, data):\n        return []\n\n\n"
        "class B(A):\n    pass\n\n\n"
        "class C(A):\n    def decode(self):\n        return []\n\n\n"
        "class Decoder(B, C):"
    )
    source = replaced("class Decoder:", bases).replace("def decode(self, packet)", "def _d(self)")
    # Python's C3 order is Decoder, B, C, A: C's broken decode wins over A's.
    assert contract_messages(source) == [
        "C.decode takes 0 positional arguments after self, the contract passes 1 (packet)"
    ]


def test_contract_data_matches_the_documented_interface() -> None:
    shape = {
        spec.name: {m.name: (m.positional_args, m.required) for m in spec.methods}
        for spec in CODEC_CONTRACT
    }
    assert shape == {
        "Encoder": {
            "__init__": (("width", "height", "fps", "params"), True),
            "encode": (("y", "u", "v"), True),
            "flush": ((), False),
        },
        "Decoder": {
            "__init__": (("width", "height", "fps"), True),
            "decode": (("packet",), True),
            "flush": ((), False),
        },
    }


# --- report ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("violation", "text"),
    [
        pytest.param(
            Violation("import", "import of 'os' is not allowed", 12, 4),
            "line 12, col 4: [import] import of 'os' is not allowed",
            id="line-col",
        ),
        pytest.param(Violation("syntax", "bad", 3, None), "line 3: [syntax] bad", id="line"),
        pytest.param(Violation("size", "too big"), "[size] too big", id="no-position"),
    ],
)
def test_violation_formatting(violation: Violation, text: str) -> None:
    assert str(violation) == text


def test_sha256_and_size_are_of_the_utf8_bytes() -> None:
    source = with_snippet("label = 'débit'\n")
    report = validate_source(source)
    data = source.encode("utf-8")
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size == len(data) == len(source) + 1


def test_raise_for_violations_names_the_file_and_every_violation() -> None:
    report = validate_source(with_snippet("import os\nx = eval('1')\n"))
    with pytest.raises(CodecRejected) as caught:
        report.raise_for_violations("candidate_17.py")
    message = str(caught.value)
    assert message.startswith("candidate_17.py: codec rejected")
    assert all(f"candidate_17.py: {violation}" in message for violation in report.violations)
    assert caught.value.report is report
    assert isinstance(caught.value, ValueError)


def test_raise_for_violations_lists_at_most_fifty() -> None:
    report = validate_source(with_snippet("x = eval(1)\n" * 60))
    with pytest.raises(CodecRejected, match=r"\.\.\. and 10 more") as caught:
        report.raise_for_violations("c.py")
    assert len(caught.value.report.violations) == 60


def test_raise_for_violations_is_silent_for_a_valid_codec() -> None:
    report = validate_source(MINIMAL_CODEC)
    assert report.ok
    report.raise_for_violations("codec.py")


# --- policy against the installed modules --------------------------------------------------


def test_optional_modules_are_allowed_exactly_when_installed() -> None:
    for name in OPTIONAL_MODULES:
        installed = importlib.util.find_spec(name) is not None
        assert (name in allowed_modules()) is installed
        report = validate_source(with_snippet(f"import {name}\n"))
        assert report.ok is installed, listing(report)
        if not installed:
            assert "not installed here" in report.violations[0].message


# Modules that read or write files, start processes, load native code or code from strings,
# unpickle, or expose interpreter internals; and callables with the same powers.
DANGEROUS_MODULES = {
    "os", "posix", "sys", "subprocess", "builtins", "importlib", "ctypes", "_ctypes", "pickle",
    "_pickle", "marshal", "io", "_io", "pathlib", "shutil", "tempfile", "fileinput", "inspect",
    "gc", "mmap", "socket", "_socket", "platform", "sysconfig", "unittest", "argparse", "codecs",
    "logging", "concurrent", "multiprocessing", "timeit", "runpy", "code", "codeop", "pdb",
    "bdb", "linecache", "tokenize", "zipimport", "zipfile", "tarfile", "gzip", "shelve", "dbm",
    "sqlite3", "urllib", "http", "webbrowser", "glob", "pkgutil", "site", "pydoc", "_imp",
    "_frozen_importlib", "_frozen_importlib_external", "_posixsubprocess", "posixpath",
    "string", "pytest", "_pytest", "mypy", "numpy.ctypeslib", "numpy.f2py", "numpy.testing",
    "numpy.lib.format", "numpy.lib._format_impl", "numpy.lib.npyio", "numpy.lib._npyio_impl",
    "numpy.lib._datasource", "scipy.io", "scipy.datasets", "scipy._lib._ccallback",
    "scipy._lib._testutils",
}  # fmt: skip


def dangerous_callables() -> dict[int, str]:
    import builtins
    import dataclasses
    import functools
    import operator
    import typing

    import numpy as np

    found = {
        id(getattr(builtins, name)): f"builtins.{name}"
        for name in (
            "open", "exec", "eval", "compile", "getattr", "setattr", "delattr", "__import__",
            "globals", "locals", "vars", "breakpoint", "input",
        )
    }  # fmt: skip
    for label, obj in {
        "np.load": np.load,
        "np.save": np.save,
        "np.fromfile": np.fromfile,
        "np.memmap": np.memmap,
        "np.loadtxt": np.loadtxt,
        "np.genfromtxt": np.genfromtxt,
        "np.fromregex": np.fromregex,
        "np.lib.npyio.DataSource": np.lib.npyio.DataSource,
        "np.lib.format.read_array": np.lib.format.read_array,
        "np.lib.stride_tricks.as_strided": np.lib.stride_tricks.as_strided,
        "operator.attrgetter": operator.attrgetter,
        "operator.methodcaller": operator.methodcaller,
        "typing.get_type_hints": typing.get_type_hints,
        "typing.ForwardRef": typing.ForwardRef,
        "functools.singledispatch": functools.singledispatch,
        "types.CodeType": types.CodeType,
        "types.FunctionType": types.FunctionType,
        "types.SimpleNamespace": types.SimpleNamespace,  # attributes named by computed strings
        "dataclasses.make_dataclass": dataclasses.make_dataclass,  # same
        "functools.update_wrapper": functools.update_wrapper,  # getattr/setattr by string
        "functools.wraps": functools.wraps,
        "warnings._getcategory": vars(warnings)["_getcategory"],  # imports modules by name
        "numpy.core._ufunc_reconstruct": np.core._ufunc_reconstruct,  # imports + getattr
        "numpy._core.function_base.add_newdoc": np._core.function_base.add_newdoc,  # imports
    }.items():
        found[id(obj)] = label
    if importlib.util.find_spec("scipy") is not None:
        from scipy._lib._uarray import _backend

        found[id(_backend.unpickle_function)] = "scipy uarray unpickle_function"  # import+getattr
    return found


def importable_roots() -> Iterator[types.ModuleType]:
    """Every module a codec may import here: allowed packages and their allowed submodules."""
    pending = deque(sorted(allowed_modules()))
    while pending:
        path = pending.popleft()
        report = validate_source(f"import {path}\n")
        if any(v.rule == "import" for v in report.violations):
            continue
        try:
            module = importlib.import_module(path)
        except ImportError:  # an optional dependency is missing: not importable in a sandbox either
            continue
        yield module
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            pending.append(f"{path}.{info.name}")


def reachable_edges() -> Iterator[tuple[str, object]]:
    """(path, value) of everything a codec reaches from importable modules through attribute
    names the validator lets through; modules are followed, classes looked into."""
    queue: deque[tuple[object, str, frozenset[str] | None]] = deque(
        (module, module.__name__, None) for module in importable_roots()
    )
    seen: set[tuple[int, frozenset[str] | None]] = set()
    while queue:
        obj, path, only = queue.popleft()
        if (id(obj), only) in seen:
            continue
        seen.add((id(obj), only))
        # a module's own __dict__ too: packages like scipy hide private members from dir()
        names = sorted(vars(obj)) if isinstance(obj, type) else sorted({*vars(obj), *dir(obj)})
        for name in names:
            if not name.isidentifier():  # unreachable from source (e.g. pytest's "@py_builtins")
                continue
            if only is not None and name not in only:
                continue
            if banned_attribute(name) is not None and name not in ALLOWED_AFTER_BANNED:
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # lazy attributes that fail to load are not reachable either
                continue
            child = f"{path}.{name}"
            yield child, value
            if isinstance(value, types.ModuleType | type):
                following = ALLOWED_AFTER_BANNED.get(name) if banned_attribute(name) else None
                queue.append((value, child, following))


# Reachable functions that run code from strings or import modules by name, reviewed as safe.
REVIEWED_GADGETS = {
    "collections.namedtuple",  # exec of a template over validated identifiers
    "scipy.optimize._optimize.show_options",  # imports names from a fixed table
}
CODE_FROM_STRINGS = {"exec", "eval", "__import__", "import_module"}


def names_used(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= names_used(constant)
    return names


@pytest.fixture(scope="module")
def reachable() -> list[tuple[str, object]]:
    """Every (path, value) a codec reaches; walked once per test session (about 2 s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated scipy namespaces warn on access
        edges = list(reachable_edges())
    paths = {path for path, _ in edges}
    assert {"numpy.fft.rfft", "zlib.compress", "functools.reduce"} <= paths  # it really walked
    return edges


def test_reachable_functions_do_not_run_strings_or_import_by_name(
    reachable: list[tuple[str, object]],
) -> None:
    gadgets: set[str] = set()
    for path, value in reachable:
        function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
        code = getattr(function, "__code__", None)
        if isinstance(code, types.CodeType) and names_used(code) & CODE_FROM_STRINGS:
            name = f"{function.__module__}.{function.__qualname__}"
            if name not in REVIEWED_GADGETS:
                gadgets.add(f"{path} is {name}")
    assert not gadgets, "\n".join(sorted(gadgets))


def test_no_dangerous_module_or_callable_is_reachable_through_allowed_attributes(
    reachable: list[tuple[str, object]],
) -> None:
    dangerous = dangerous_callables()
    leaks: list[str] = []
    for path, value in reachable:
        if isinstance(value, types.ModuleType):
            name = value.__name__
            if any(name == d or name.startswith(d + ".") for d in DANGEROUS_MODULES):
                leaks.append(f"{path} is module {name}")
        elif id(value) in dangerous:
            leaks.append(f"{path} is {dangerous[id(value)]}")
    assert not leaks, "\n".join(sorted(leaks)[:40])

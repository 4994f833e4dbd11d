"""What a codec module must define and what it may use, as data.

A codec is one standalone Python module holding two classes::

    class Encoder:
        def __init__(self, width: int, height: int, fps: float, params: dict): ...
        def encode(self, y, u, v) -> bytes: ...   # one 4:2:0 frame -> one packet (may be b"")
        def flush(self) -> list[bytes]: ...        # optional: trailing packets

    class Decoder:
        def __init__(self, width: int, height: int, fps: float): ...
        def decode(self, packet: bytes) -> list: ...  # zero or more (y, u, v) frames
        def flush(self) -> list: ...                  # optional

The lab calls these methods with positional arguments only. This module holds that
contract, the size limits and the import / name / attribute policy;
`codeclab.codec.validate` applies them to a source text without running it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class MethodSpec:
    """A method the lab calls with `positional_args` (names exclude `self`)."""

    name: str
    positional_args: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class ClassSpec:
    """A class the codec module must define at its top level."""

    name: str
    methods: tuple[MethodSpec, ...]


CODEC_CONTRACT: tuple[ClassSpec, ...] = (
    ClassSpec(
        "Encoder",
        (
            MethodSpec("__init__", ("width", "height", "fps", "params"), required=True),
            MethodSpec("encode", ("y", "u", "v"), required=True),
            MethodSpec("flush", (), required=False),
        ),
    ),
    ClassSpec(
        "Decoder",
        (
            MethodSpec("__init__", ("width", "height", "fps"), required=True),
            MethodSpec("decode", ("packet",), required=True),
            MethodSpec("flush", (), required=False),
        ),
    ),
)

# --- size limits -------------------------------------------------------------------------------
# The source size bounds everything a codec can carry in its own text. The literal limits stop
# the cheap ways of shipping data in it (one blob, one giant table, one giant integer, many
# blobs): see `codeclab.codec.validate` for how a literal's payload is measured.

MAX_SOURCE_BYTES = 256 * 1024
"""Largest codec source, in bytes of UTF-8."""

MAX_LITERAL_BYTES = 16 * 1024
"""Largest payload of one literal: a str/bytes constant, an f-string's or a `+` chain's
constant parts together, or an int constant (bytes needed to hold its value)."""

MAX_DISPLAY_ELEMENTS = 4096
"""Most elements in one list/tuple/set/dict display (a 64x64 table is the most a codec needs)."""

MAX_LITERAL_PAYLOAD_BYTES = 64 * 1024
"""Largest payload of all constants of the module together (docstrings included)."""

# --- imports -------------------------------------------------------------------------------

ALWAYS_ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "numpy",
        "math",
        "zlib",
        "lzma",
        "bz2",
        "struct",
        "itertools",
        "functools",
        "collections",
        "heapq",
        "bisect",
        "array",
        "dataclasses",
        "typing",
        "fractions",
    }
)
"""Top-level modules a codec may import (and their public submodules, see BANNED_ATTRIBUTES)."""

OPTIONAL_MODULES: tuple[str, ...] = ("scipy",)
"""Allowed too, but only where they are installed: a codec must run wherever the lab runs.

numba is *not* on the list even though the lab itself may have it installed (for its own
metrics): its public API reaches functions that compile and import by name (the
reachability test in tests/codec/test_validate.py finds them), so allowing it would make
the validator's promises empty. Codecs that want a JIT are a later, sandbox-only design."""


@cache
def allowed_modules() -> frozenset[str]:
    """Top-level module names a codec may import on this machine.

    `find_spec` on a top-level name only searches the import path; it does not import.
    """
    installed = {name for name in OPTIONAL_MODULES if importlib.util.find_spec(name) is not None}
    return ALWAYS_ALLOWED_MODULES | installed


# --- names -------------------------------------------------------------------------------

BANNED_NAMES: Mapping[str, str] = {
    "open": "opens files",
    "exec": "runs code from a string",
    "eval": "runs code from a string",
    "compile": "builds code objects",
    "globals": "exposes the module namespace",
    "locals": "exposes frame namespaces",
    "vars": "exposes object namespaces",
    "getattr": "reads attributes by computed name",
    "setattr": "writes attributes by computed name",
    "delattr": "deletes attributes by computed name",
    "input": "reads the terminal",
    "breakpoint": "starts a debugger",
    "help": "starts the interactive help (a pager process)",
    "exit": "ends the interpreter",
    "quit": "ends the interpreter",
    "copyright": "is an interactive helper",
    "credits": "is an interactive helper",
    "license": "is an interactive helper that reads files",
}
"""Built-in names a codec may not mention at all (`hasattr`, `dir`, `type(x)` stay allowed:
they return plain values, and every string they could be fed is checked)."""

ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__slots__", "__all__"})
"""The only `__dunder__` identifiers a codec may use as plain names; they hold strings/tuples.
(`if __name__ == "__main__":` self-tests are dead code in the sandbox, but harmless.)"""

_PICKLING = "customises pickling, which only matters to whoever unpickles codec objects"
_RAW_MEMORY = "lets numpy make arrays over any memory address"
_ATTRIBUTE_HOOK = "answers attribute lookups by computed name (numpy asks for __array_interface__)"

BANNED_DUNDER_METHODS: Mapping[str, str] = {
    "__reduce__": _PICKLING,
    "__reduce_ex__": _PICKLING,
    "__getstate__": _PICKLING,
    "__setstate__": _PICKLING,
    "__getnewargs__": _PICKLING,
    "__getnewargs_ex__": _PICKLING,
    "__array_interface__": _RAW_MEMORY,
    "__array_struct__": _RAW_MEMORY,
    "__cuda_array_interface__": _RAW_MEMORY,
    "__getattr__": _ATTRIBUTE_HOOK,
    "__getattribute__": _ATTRIBUTE_HOOK,
}
"""Dunder methods a codec class may not define (it may define any other, e.g. __len__)."""

ALLOWED_BUILTIN_BASES: frozenset[str] = frozenset(
    {
        "object",
        "Exception",
        "ArithmeticError",
        "EOFError",
        "IndexError",
        "KeyError",
        "LookupError",
        "OverflowError",
        "RuntimeError",
        "TypeError",
        "ValueError",
        "ZeroDivisionError",
    }
)
"""Built-in classes a codec class may inherit from, besides classes defined in the module."""

# --- attributes -------------------------------------------------------------------------------
# Attribute names are judged without knowing the receiver: `m = np; m.load(...)` or an object
# handed back by a library must not get around a ban, so a name is banned wherever it appears.
# Underscore names (`x._y`) are banned wholesale by the validator; the list holds public ones.
# The list below cuts every path from an allowed module to a module or callable that reads or
# writes files, starts processes, loads native code, unpickles, evaluates strings or reaches
# interpreter internals (tests/codec/test_validate.py walks the installed modules to check it).

_FILES_PICKLE = "reads or writes files or unpickles"
_MODULE = "is a module outside the allow-list"

BANNED_ATTRIBUTES: Mapping[str, str] = {
    # built-ins re-exported by modules
    **{name: BANNED_NAMES[name] for name in ("open", "exec", "eval", "compile")},
    **{name: BANNED_NAMES[name] for name in ("getattr", "setattr", "delattr", "breakpoint")},
    **{name: BANNED_NAMES[name] for name in ("globals", "locals", "vars")},
    # operating system
    "system": "runs a shell command",
    "popen": "runs a shell command",
    "fork": "starts a process",
    "forkpty": "starts a process",
    "kill": "signals processes",
    "killpg": "signals processes",
    "unlink": "deletes files",
    "rmdir": "deletes directories",
    "rmtree": "deletes directories",
    "removedirs": "deletes directories",
    # modules reachable as attributes of allowed modules (e.g. dataclasses.sys, bz2.os, enum.bltns)
    **{
        name: _MODULE
        for name in (
            "os",
            "posix",
            "sys",
            "subprocess",
            "builtins",
            "bltns",
            "importlib",
            "ctypes",
            "pickle",
            "marshal",
            "io",
            "pathlib",
            "shutil",
            "tempfile",
            "fileinput",
            "inspect",
            "gc",
            "mmap",
            "mm",
            "socket",
            "platform",
            "sysconfig",
            "unittest",
            "argparse",
            "codecs",
            "logging",
            "concurrent",
            "multiprocessing",
            "timeit",
            "ast",
            "runpy",
            "linecache",
            "tokenize",
            "zipfile",
            "zipimport",
            "gzip",
            "tarfile",
            "pkgutil",
            "site",
            "pydoc",
            "webbrowser",
            "urllib",
            "glob",
            "posixpath",
            "genericpath",
            "pytest",
            "mypy_plugin",
        )
    },
    # numpy
    "lib": "holds numpy's file and pickle readers (only numpy.lib.stride_tricks is allowed)",
    "ctypeslib": "loads shared libraries",
    "f2py": "compiles and loads native code",
    "distutils": "compiles native code",
    "testing": "runs processes and compiles native code",
    "tests": "imports test-only code",
    "conftest": "imports test-only code",
    "test": "runs the test suite",
    "PytestTester": "runs the test suite",
    "core": "holds interpreter-level helpers (numpy.core / numba.core)",
    "load": _FILES_PICKLE,
    "save": _FILES_PICKLE,
    "savez": _FILES_PICKLE,
    "savez_compressed": _FILES_PICKLE,
    "fromfile": _FILES_PICKLE,
    "tofile": _FILES_PICKLE,
    "dump": _FILES_PICKLE,
    "dumps": _FILES_PICKLE,
    "memmap": _FILES_PICKLE,
    "open_memmap": _FILES_PICKLE,
    "loadtxt": _FILES_PICKLE,
    "savetxt": _FILES_PICKLE,
    "genfromtxt": _FILES_PICKLE,
    "fromregex": _FILES_PICKLE,
    "fromtextfile": _FILES_PICKLE,
    "read_array": _FILES_PICKLE,
    "write_array": _FILES_PICKLE,
    "DataSource": "opens files and URLs",
    "as_strided": "makes arrays over arbitrary memory",
    # scipy
    "datasets": "downloads files",
    "misc": "reads data files",
    "load_npz": _FILES_PICKLE,
    "save_npz": _FILES_PICKLE,
    "LowLevelCallable": "calls native function pointers",
    # compression modules
    "LZMAFile": "opens files by name",
    "BZ2File": "opens files by name",
    # attribute access or evaluation by string
    "attrgetter": "reads attributes by computed name",
    "methodcaller": "calls methods by computed name",
    "Formatter": "reads attributes by computed name (string.Formatter.get_field)",
    "get_type_hints": "evaluates strings as code",
    "ForwardRef": "evaluates strings as code",
    "singledispatch": "evaluates annotation strings as code",
    "singledispatchmethod": "evaluates annotation strings as code",
    "update_wrapper": "reads and writes attributes by computed name",
    "wraps": "reads and writes attributes by computed name (functools.update_wrapper)",
    "SimpleNamespace": "makes objects with attributes named by computed strings",
    "make_dataclass": "makes classes with attributes named by computed strings",
    "enum": "makes classes with attributes named by computed strings (Enum('E', names))",
    "warnings": "imports modules named by strings (warnings._getcategory)",
    "add_newdoc": "imports modules named by strings",
    "CodeType": "builds code objects",
    "FunctionType": "builds functions from code objects",
    "LambdaType": "builds functions from code objects",
    # numba
    "cfunc": "makes native callbacks",
    "carray": "makes arrays over arbitrary memory",
    "farray": "makes arrays over arbitrary memory",
    "extending": "generates native code",
    "experimental": "is unstable interpreter-level API",
    "cuda": "drives a GPU",
    "unsafe": "is unchecked native API",
}
"""Attribute names a codec may not use on any object, with the reason."""

BANNED_ATTRIBUTE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^exec[lv]p?e?$"), "replaces the process"),
    (re.compile(r"^(posix_)?spawn\w*$"), "starts a process"),
)
"""Families of process-control names (os.execv..., os.spawnl..., os.posix_spawn...)."""

ALLOWED_AFTER_BANNED: Mapping[str, frozenset[str]] = {"lib": frozenset({"stride_tricks"})}
"""`x.lib.stride_tricks` (numpy.lib.stride_tricks) is allowed although `lib` is banned."""

INTROSPECTION_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
        "func_globals",
        "func_code",
        "func_closure",
    }
)
"""Frame, generator, coroutine, traceback and code attributes that are not dunders."""

"""Static validation of untrusted codec source: parse it with `ast`, never import or run it.

Codec source comes from an LLM or a search and is treated as hostile. Validation is a first
gate (the sandbox is the boundary that holds); it rejects what a codec has no business doing
and names the line, the column (1-based, in characters) and the rule of every violation.

Rules, by id:

``syntax``
    The text must be UTF-8 without NUL bytes, declare no other coding (a ``# coding:`` line
    would make Python read different code than the one checked) and parse. Stops the checks.
``size``
    At most `MAX_SOURCE_BYTES` of UTF-8. A text over four times that is not parsed at all.
``literal-size``
    Payload carried in literals is capped, since that is how a codec would smuggle video:
    one str/bytes constant, the constant parts of one f-string, or one ``+`` chain of
    str/bytes constants over `MAX_LITERAL_BYTES` (implicit concatenation is one constant
    already); an int constant whose value needs more than `MAX_LITERAL_BYTES` bytes; a
    list/tuple/set/dict display of more than `MAX_DISPLAY_ELEMENTS` elements; and all the
    constants of the module together (str/bytes: their bytes, int: bytes to hold the value,
    at least 1, float: 8, complex: 16, docstrings included) over `MAX_LITERAL_PAYLOAD_BYTES`.
    Repetition (``b"\\0" * n``) carries no information and is not limited; identifiers and
    code shape can still carry data, bounded only by the source size.
``import``
    Only `allowed_modules()` and their public submodules; no relative imports, no
    ``import *``, no ``__future__``, no private (``_x``) or banned module or member.
``banned-name``
    `BANNED_NAMES` (open, exec, eval, getattr, ...), ``type`` other than ``type(x)``, and
    ``__dunder__`` identifiers (except `ALLOWED_DUNDER_NAMES`; classes may define dunder
    methods other than `BANNED_DUNDER_METHODS`: pickling hooks, ``__array_interface__``,
    ``__getattr__``).
``dunder-attribute``
    Any ``x.__anything__`` (``super().__init__`` included), also as a ``case C(__x__=...)``
    pattern attribute.
``introspection-attribute``
    Frame/generator/traceback/code attributes that are not dunders (``gi_frame``, ...).
``private-attribute``
    Any ``x._name``, on any object (the codec's own ``self._x`` too): the receiver of an
    attribute is unknown statically, and library internals are full of ways out
    (``dataclasses._create_fn`` runs a string as code, scipy keeps ``importlib`` as
    ``scipy._importlib``). Name mangling (``self.__x``) is covered too.
``banned-attribute``
    `BANNED_ATTRIBUTES` on any receiver (``np.load``, ``arr.tofile``, ``dataclasses.sys``,
    ``x.system``, ...).
``dunder-string``
    A str constant that is a dunder name (``"__class__"``) or formats one
    (``"{0.__class__}"``): the raw material of attribute access by string.
``string-annotation``
    String annotations are code to `typing`: they must parse, and are checked like code
    (except the values in ``Literal[...]`` and the metadata in ``Annotated[T, ...]``).
``class-definition``
    Class statements take no keywords (``metaclass=``) and inherit only from classes defined
    in the module, ``object`` or the built-in exceptions in `ALLOWED_BUILTIN_BASES`.
``contract``
    ``Encoder`` and ``Decoder`` are each defined once by a top-level class statement, with
    their `CODEC_CONTRACT` methods defined by ``def`` (in the class or a base defined in the
    module), undecorated, not async, callable with the contract's positional arguments.

Top-level statements of any kind are allowed: module code only ever runs inside the sandbox.
The lab must then run exactly the text that was validated (same bytes, same sha256).
"""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from codeclab.codec.contract import (
    ALLOWED_AFTER_BANNED,
    ALLOWED_BUILTIN_BASES,
    ALLOWED_DUNDER_NAMES,
    BANNED_ATTRIBUTE_PATTERNS,
    BANNED_ATTRIBUTES,
    BANNED_DUNDER_METHODS,
    BANNED_NAMES,
    CODEC_CONTRACT,
    INTROSPECTION_ATTRIBUTES,
    MAX_DISPLAY_ELEMENTS,
    MAX_LITERAL_BYTES,
    MAX_LITERAL_PAYLOAD_BYTES,
    MAX_SOURCE_BYTES,
    OPTIONAL_MODULES,
    ClassSpec,
    MethodSpec,
    allowed_modules,
)

_PARSE_LIMIT_BYTES = 4 * MAX_SOURCE_BYTES
"""Above this the text is not even parsed: parsing a hostile giant costs the lab memory."""

_TYPE_MESSAGE = (
    "'type' may only be called as type(x) with one argument "
    "(type(name, bases, namespace) builds classes)"
)

_MAX_LISTED = 50
"""Violations spelled out in a `CodecRejected` message; the report keeps all of them."""

_DUNDER = re.compile(r"__\w+__")
_DUNDER_FORMAT_FIELD = re.compile(r"\{[^{}]*__\w+__[^{}]*\}")
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Violation:
    """One broken rule; `line` and `col` (1-based, characters) locate it when they apply."""

    rule: str
    message: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"[{self.rule}] {self.message}"
        where = f"line {self.line}" if self.col is None else f"line {self.line}, col {self.col}"
        return f"{where}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one source text."""

    sha256: str
    """Hex digest of the source bytes (UTF-8)."""
    size: int
    """Bytes of UTF-8."""
    violations: tuple[Violation, ...]
    """Sorted by line, then column."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_for_violations(self, filename: str) -> None:
        """Raise `CodecRejected` naming `filename` and every violation, if there is any."""
        if self.violations:
            raise CodecRejected(filename, self)


class CodecRejected(ValueError):  # noqa: N818 (the name says what happened)
    """A codec source broke validation rules; `report` holds all of them."""

    def __init__(self, filename: str, report: ValidationReport) -> None:
        self.filename = filename
        self.report = report
        count = len(report.violations)
        lines = [
            f"{filename}: codec rejected by static validation "
            f"({count} violation{'s' if count != 1 else ''}, sha256 {report.sha256[:12]}):"
        ]
        shown = report.violations[:_MAX_LISTED]
        lines += [f"  {filename}: {violation}" for violation in shown]
        if count > len(shown):
            lines.append(f"  ... and {count - len(shown)} more (see .report)")
        super().__init__("\n".join(lines))


def validate_source(source: str, *, filename: str = "<codec>") -> ValidationReport:
    """Check codec `source` against every rule, without importing or running it.

    `filename` is only used to name the file in messages.
    """
    data = source.encode("utf-8", "surrogatepass")
    return _validate(source, data, filename)


def validate_bytes(data: bytes, *, filename: str = "<codec>") -> ValidationReport:
    """Like `validate_source`, for the raw bytes of a file (which must be UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        violation = Violation(
            "syntax",
            f"{filename} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            line,
            col,
        )
        return _report(data, [*_check_size(data, filename)[0], violation])
    return _validate(text, data, filename)


def banned_attribute(name: str) -> tuple[str, str] | None:
    """(rule, reason) when reading `.name` of any object is rejected, else None.

    Does not cover the exceptions of `ALLOWED_AFTER_BANNED` (``np.lib.stride_tricks``).
    """
    if _is_dunder(name):
        return "dunder-attribute", "reaches interpreter internals (every dunder attribute does)"
    if name.startswith("_"):
        return "private-attribute", (
            "is private: underscore attributes are banned on every object, the codec's own "
            "included, as library internals hide ways out (drop the leading underscore)"
        )
    if name in INTROSPECTION_ATTRIBUTES:
        return "introspection-attribute", "it reaches frames, code or globals"
    reason = BANNED_ATTRIBUTES.get(name)
    if reason is not None:
        return "banned-attribute", reason
    for pattern, why in BANNED_ATTRIBUTE_PATTERNS:
        if pattern.match(name):
            return "banned-attribute", why
    return None


# --- driver -------------------------------------------------------------------------------


def _validate(text: str, data: bytes, filename: str) -> ValidationReport:
    violations, fatal = _check_size(data, filename)
    if fatal:
        return _report(data, violations)
    encoding_problems, fatal = _check_encoding(text, filename)
    violations += encoding_problems
    if fatal:
        return _report(data, violations)
    try:
        with warnings.catch_warnings():  # e.g. invalid escape sequences: not ours to report
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        message = f"{filename} does not parse: {exc.msg}"
        violations.append(Violation("syntax", message, exc.lineno, exc.offset))
        return _report(data, violations)
    except (RecursionError, MemoryError):
        violations.append(Violation("syntax", f"{filename} is nested too deeply to parse"))
        return _report(data, violations)
    positions = _Positions(text)
    nodes = list(ast.walk(tree))  # breadth first: every parent before its children
    violations += _Checker(tree, nodes, positions).run()
    violations += _check_contract(tree, nodes, positions)
    return _report(data, violations)


def _check_size(data: bytes, filename: str) -> tuple[list[Violation], bool]:
    """The size violation if any, and whether the text is too large to parse at all."""
    if len(data) <= MAX_SOURCE_BYTES:
        return [], False
    message = (
        f"{filename} is {len(data)} bytes, over the limit of {MAX_SOURCE_BYTES} bytes "
        f"({MAX_SOURCE_BYTES // 1024} KiB of UTF-8)"
    )
    fatal = len(data) > _PARSE_LIMIT_BYTES
    if fatal:
        message += "; too large to parse, nothing else was checked"
    return [Violation("size", message)], fatal


def _report(data: bytes, violations: list[Violation]) -> ValidationReport:
    ordered = sorted(violations, key=lambda v: (v.line or 0, v.col or 0, v.rule, v.message))
    return ValidationReport(hashlib.sha256(data).hexdigest(), len(data), tuple(ordered))


def _check_encoding(text: str, filename: str) -> tuple[list[Violation], bool]:
    """Problems with the text as text, and whether they stop the checks."""
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _char_position(text, nul)
        return [Violation("syntax", f"{filename} contains a NUL character", line, col)], True
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        line, col = _char_position(text, surrogate.start())
        message = f"{filename} is not valid UTF-8 (lone surrogate U+{ord(surrogate[0]):04X})"
        return [Violation("syntax", message, line, col)], True
    problems = []
    for number, line_text in enumerate(_LINE_BREAK.split(text, maxsplit=2)[:2], start=1):
        cookie = _CODING_COOKIE.match(line_text)
        if cookie is None:
            continue
        name = cookie[1].lower().replace("_", "-")
        if name not in ("utf-8", "utf8") and not name.startswith("utf-8-"):
            message = (
                f"{filename} declares coding {cookie[1]!r}; codec source must be UTF-8 "
                "(remove the coding line)"
            )
            problems.append(Violation("syntax", message, number, cookie.start(1) + 1))
    return problems, False


def _char_position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    starts = [m.end() for m in _LINE_BREAK.finditer(before)]
    line_start = starts[-1] if starts else 0
    return len(starts) + 1, index - line_start + 1


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line_start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
    line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    return line, len(before[line_start:].decode("utf-8", "replace")) + 1


class _Positions:
    """Turns AST positions (UTF-8 byte columns) into 1-based character columns."""

    def __init__(self, text: str) -> None:
        self._lines = _LINE_BREAK.split(text)

    def of(self, node: ast.AST) -> tuple[int | None, int | None]:
        """Where `node` starts; for an attribute access, where its attribute name starts."""
        if isinstance(node, ast.Attribute) and node.end_lineno and node.end_col_offset:
            width = len(node.attr.encode("utf-8"))
            return self._convert(node.end_lineno, node.end_col_offset - width)
        line: int | None = getattr(node, "lineno", None)
        col: int | None = getattr(node, "col_offset", None)
        if line is None or col is None:
            return line, None
        return self._convert(line, col)

    def _convert(self, line: int, byte_col: int) -> tuple[int, int]:
        if 0 < line <= len(self._lines) and not self._lines[line - 1].isascii():
            raw = self._lines[line - 1].encode("utf-8", "surrogatepass")
            return line, len(raw[:byte_col].decode("utf-8", "replace")) + 1
        return line, byte_col + 1


def _names_dunder(text: str) -> bool:
    if text == "__main__":  # the `if __name__ == "__main__":` idiom
        return False
    return bool(_DUNDER.fullmatch(text.strip()) or _DUNDER_FORMAT_FIELD.search(text))


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _describe(node: ast.expr, depth: int = 6) -> str:
    """Short source form of a dotted expression for messages (at most `depth` attributes)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute) and len(parts) < depth:
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        head = node.id
    elif isinstance(node, ast.Attribute):
        head = "..."
    else:
        head = f"<{type(node).__name__.lower()}>"
    return ".".join([head, *reversed(parts)])


def _payload(value: object) -> int:
    """Bytes of information a constant carries (see the module docstring)."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, bool) or value is None or value is Ellipsis:
        return 0
    if isinstance(value, int):
        return max(1, (abs(value).bit_length() + 7) // 8)
    if isinstance(value, float):
        return 8
    if isinstance(value, complex):
        return 16
    return 0


# --- the walk over the tree -------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    scope: str = "module"
    """"module", "class" or "function": where the node's names live."""
    annotation: bool = False
    """Inside an annotation, where strings are forward references (code)."""
    anchor: tuple[int | None, int | None] | None = None
    """Position of the string annotation whose parsed code is being checked."""


class _Checker:
    """Walks the tree once, iteratively (no recursion limit on hostile nesting)."""

    def __init__(self, tree: ast.Module, nodes: list[ast.AST], positions: _Positions) -> None:
        self._tree = tree
        self._positions = positions
        self._violations: list[Violation] = []
        self._constants: list[tuple[int, int, int]] = []  # (line, col, payload bytes)
        self._exempt: set[int] = set()  # ids of nodes another node already judged
        self._statement_strings: set[int] = set()  # docstrings and other bare string statements
        self._module_classes: set[str] = set()
        self._parsed_annotations: list[ast.Expression] = []  # kept alive: `_exempt` holds ids
        for node in nodes:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                self._statement_strings.add(id(node.value))
        for node in _module_scope(tree):
            if isinstance(node, ast.ClassDef):
                self._module_classes.add(node.name)
        self._concatenations = _literal_concatenations(reversed(nodes))

    def run(self) -> list[Violation]:
        stack: list[tuple[ast.AST, _Context]] = [(self._tree, _Context())]
        while stack:
            node, context = stack.pop()
            self._check(node, context)
            stack.extend(self._children(node, context))
        self._check_total_payload()
        return self._violations

    # -- traversal --

    def _children(self, node: ast.AST, context: _Context) -> Iterator[tuple[ast.AST, _Context]]:
        if isinstance(node, ast.ClassDef):
            inner = _Context("class", False, context.anchor)
            for name, value in ast.iter_fields(node):
                yield from _tag(value, inner if name == "body" else context)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = _Context("function", False, context.anchor)
            for name, value in ast.iter_fields(node):
                if name == "returns":
                    yield from _tag(value, _as_annotation(context))
                else:
                    yield from _tag(value, inner if name == "body" else context)
        elif isinstance(node, ast.arg | ast.AnnAssign):
            for name, value in ast.iter_fields(node):
                annotation = name == "annotation"
                yield from _tag(value, _as_annotation(context) if annotation else context)
        elif isinstance(node, ast.Subscript) and context.annotation and _is_literal_type(node):
            yield node.value, context
            yield node.slice, _Context(context.scope, False, context.anchor)
        elif (
            isinstance(node, ast.Subscript)
            and context.annotation
            and _is_annotated_type(node)
            and isinstance(node.slice, ast.Tuple)
            and node.slice.elts
        ):
            yield node.value, context
            yield node.slice.elts[0], context
            for extra in node.slice.elts[1:]:
                yield extra, _Context(context.scope, False, context.anchor)
        else:
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.expr_context):
                    yield child, context

    # -- reporting --

    def _add(self, rule: str, message: str, node: ast.AST, context: _Context) -> None:
        if context.anchor is not None:
            line, col = context.anchor
            message = f"{message} (in a string annotation)"
        else:
            line, col = self._positions.of(node)
        self._violations.append(Violation(rule, message, line, col))

    # -- per node --

    def _check(self, node: ast.AST, context: _Context) -> None:
        if isinstance(node, ast.Name):
            self._check_name(node, context)
        elif isinstance(node, ast.Attribute):
            self._check_attribute(node, context)
        elif isinstance(node, ast.Constant):
            self._check_constant(node, context)
        elif isinstance(node, ast.Call):
            self._check_call(node, context)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self._check_import(node, context)
        elif isinstance(node, ast.ClassDef):
            self._check_class(node, context)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._check_function_name(node, context)
        elif isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
            self._check_display(node, context)
        elif isinstance(node, ast.JoinedStr):
            self._check_joined_str(node, context)
        elif isinstance(node, ast.BinOp):
            self._check_concatenation(node, context)
        elif isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                self._check_attribute_name(attr, node, context)
        for identifier in _bound_identifiers(node):
            if _is_dunder(identifier) and identifier not in ALLOWED_DUNDER_NAMES:
                self._add(
                    "banned-name", f"dunder name {identifier!r} is not allowed", node, context
                )

    def _check_name(self, node: ast.Name, context: _Context) -> None:
        name = node.id
        if name in BANNED_NAMES:
            self._add(
                "banned-name",
                f"name {name!r} is not allowed: it {BANNED_NAMES[name]}",
                node,
                context,
            )
        elif _is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
            self._add("banned-name", f"dunder name {name!r} is not allowed", node, context)
        elif name == "type" and not context.annotation and id(node) not in self._exempt:
            self._add(
                "banned-name",
                _TYPE_MESSAGE,
                node,
                context,
            )

    def _check_call(self, node: ast.Call, context: _Context) -> None:
        if not isinstance(node.func, ast.Name) or node.func.id != "type":
            return
        if len(node.args) == 1 and not isinstance(node.args[0], ast.Starred) and not node.keywords:
            self._exempt.add(id(node.func))
        elif context.annotation:  # a bare `type` is fine in annotations, a call is not
            self._add(
                "banned-name",
                _TYPE_MESSAGE,
                node,
                context,
            )

    def _check_attribute(self, node: ast.Attribute, context: _Context) -> None:
        value = node.value
        if isinstance(value, ast.Attribute) and node.attr in ALLOWED_AFTER_BANNED.get(
            value.attr, frozenset()
        ):
            self._exempt.add(id(value))
        if id(node) not in self._exempt:
            self._check_attribute_name(node.attr, node, context)

    def _check_attribute_name(self, attr: str, node: ast.AST, context: _Context) -> None:
        verdict = banned_attribute(attr)
        if verdict is not None:
            rule, reason = verdict
            self._add(rule, f"attribute {attr!r} is not allowed: it {reason}", node, context)

    def _check_constant(self, node: ast.Constant, context: _Context) -> None:
        value = node.value
        if context.anchor is None:
            size = _payload(value)
            line, col = self._positions.of(node)
            self._constants.append((line or 0, col or 0, size))
            if size > MAX_LITERAL_BYTES and id(node) not in self._exempt:
                kind = type(value).__name__
                self._add(
                    "literal-size",
                    f"{kind} literal of {size} bytes is over the "
                    f"limit of {MAX_LITERAL_BYTES} bytes for one literal",
                    node,
                    context,
                )
        if not isinstance(value, str):
            return
        if context.annotation:
            self._check_string_annotation(node, value, context)
        elif id(node) not in self._statement_strings and _names_dunder(value):
            self._add(
                "dunder-string", f"string {_clip(value)!r} names a dunder attribute", node, context
            )

    def _check_string_annotation(self, node: ast.Constant, text: str, context: _Context) -> None:
        anchor = context.anchor or self._positions.of(node)
        try:
            expression = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self._violations.append(
                Violation(
                    "string-annotation",
                    f"string annotation {_clip(text)!r} is not a Python expression",
                    anchor[0],
                    anchor[1],
                )
            )
            return
        self._parsed_annotations.append(expression)
        stack: list[tuple[ast.AST, _Context]] = [
            (expression.body, _Context(context.scope, True, anchor))
        ]
        while stack:
            child, child_context = stack.pop()
            self._check(child, child_context)
            stack.extend(self._children(child, child_context))

    def _check_import(self, node: ast.Import | ast.ImportFrom, context: _Context) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = _module_path_problem(alias.name)
                if problem is not None:
                    self._add("import", problem, alias, context)
            return
        if node.level:
            dots = "." * node.level
            self._add(
                "import",
                f"relative import 'from {dots}{node.module or ''} import ...' "
                "is not allowed: a codec is one standalone module",
                node,
                context,
            )
            return
        module = node.module or ""
        problem = _top_level_problem(module)
        if problem is not None:
            self._add("import", problem, node, context)
            return
        for alias in node.names:
            if alias.name == "*":
                self._add(
                    "import",
                    f"'from {module} import *' is not allowed: import names explicitly",
                    alias,
                    context,
                )
                continue
            problem = _module_path_problem(f"{module}.{alias.name}")
            if problem is not None:
                self._add("import", problem, alias, context)

    def _check_class(self, node: ast.ClassDef, context: _Context) -> None:
        for keyword in node.keywords:
            what = f"{keyword.arg}=" if keyword.arg else "**"
            self._add(
                "class-definition",
                f"class {node.name!r} passes {what}...: class "
                "keywords (metaclass=...) are not allowed",
                keyword,
                context,
            )
        for base in node.bases:
            if isinstance(base, ast.Name) and (
                base.id in self._module_classes or base.id in ALLOWED_BUILTIN_BASES
            ):
                continue
            self._add(
                "class-definition",
                f"class {node.name!r} inherits from "
                f"{_describe(base)!r}; a codec class may inherit only from classes "
                "defined in the module, object or a built-in exception",
                base,
                context,
            )

    def _check_function_name(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, context: _Context
    ) -> None:
        if not _is_dunder(node.name):
            return
        if context.scope != "class":
            self._add(
                "banned-name",
                f"function {node.name!r}: dunder names are only allowed for methods",
                node,
                context,
            )
        elif node.name in BANNED_DUNDER_METHODS:
            reason = BANNED_DUNDER_METHODS[node.name]
            self._add(
                "banned-name", f"method {node.name!r} is not allowed: it {reason}", node, context
            )

    def _check_display(
        self, node: ast.List | ast.Tuple | ast.Set | ast.Dict, context: _Context
    ) -> None:
        count = len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)
        if count > MAX_DISPLAY_ELEMENTS:
            kind = type(node).__name__.lower()
            self._add(
                "literal-size",
                f"{kind} display of {count} elements is over the limit of {MAX_DISPLAY_ELEMENTS}",
                node,
                context,
            )

    def _check_joined_str(self, node: ast.JoinedStr, context: _Context) -> None:
        parts = [part for part in node.values if isinstance(part, ast.Constant)]
        size = sum(_payload(part.value) for part in parts)
        if size > MAX_LITERAL_BYTES:
            self._exempt.update(id(part) for part in parts)
            self._add(
                "literal-size",
                f"f-string with {size} bytes of constant text is over the "
                f"limit of {MAX_LITERAL_BYTES} bytes for one literal",
                node,
                context,
            )

    def _check_concatenation(self, node: ast.BinOp, context: _Context) -> None:
        leaves = self._concatenations.get(id(node))
        if leaves is None:
            return
        size = sum(_payload(leaf.value) for leaf in leaves)
        if size > MAX_LITERAL_BYTES:
            self._exempt.update(id(leaf) for leaf in leaves)
            self._add(
                "literal-size",
                f"concatenation of {len(leaves)} literals holding {size} "
                f"bytes is over the limit of {MAX_LITERAL_BYTES} bytes for one literal",
                node,
                context,
            )

    def _check_total_payload(self) -> None:
        sizes = sorted(self._constants)
        total = sum(size for _, _, size in sizes)
        if total <= MAX_LITERAL_PAYLOAD_BYTES:
            return
        running = 0
        line, col = 0, 0
        for line, col, size in sizes:  # noqa: B007 (the position where the limit is crossed)
            running += size
            if running > MAX_LITERAL_PAYLOAD_BYTES:
                break
        largest = sorted(sizes, key=lambda item: -item[2])[:3]
        where = ", ".join(f"line {ln} ({size} bytes)" for ln, _, size in largest)
        self._violations.append(
            Violation(
                "literal-size",
                f"the module's constants hold {total} bytes together, over the limit of "
                f"{MAX_LITERAL_PAYLOAD_BYTES} (the limit is crossed here; largest: {where})",
                line,
                col,
            )
        )


def _literal_concatenations(nodes: Iterable[ast.AST]) -> dict[int, list[ast.Constant]]:
    """Outermost `a + b + ...` chains made only of str/bytes constants, with their constants.

    `nodes` must list children before parents; one pass, however long the chains.
    """
    chains: dict[int, list[ast.Constant]] = {}
    for node in nodes:
        if not isinstance(node, ast.BinOp) or not isinstance(node.op, ast.Add):
            continue
        sides = (node.left, node.right)
        if not all(id(side) in chains or _text_constant(side) for side in sides):
            continue
        parts: list[ast.Constant] = []
        for side in sides:
            chain = chains.pop(id(side), None)  # a chain inside another is not outermost
            if chain is None:
                chain = [side] if isinstance(side, ast.Constant) else []
            if not parts:
                parts = chain  # reuse the left chain: long left-leaning chains stay linear
            else:
                parts += chain
        chains[id(node)] = parts
    return chains


def _text_constant(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)


def _tag(value: object, context: _Context) -> Iterator[tuple[ast.AST, _Context]]:
    if isinstance(value, ast.AST):
        yield value, context
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, ast.AST):
                yield item, context


def _as_annotation(context: _Context) -> _Context:
    return _Context(context.scope, True, context.anchor)


def _type_name(node: ast.Subscript) -> str | None:
    if isinstance(node.value, ast.Name):
        return node.value.id
    if isinstance(node.value, ast.Attribute):
        return node.value.attr
    return None


def _is_literal_type(node: ast.Subscript) -> bool:
    """`Literal[...]`: its strings are values, not forward references."""
    return _type_name(node) == "Literal"


def _is_annotated_type(node: ast.Subscript) -> bool:
    """`Annotated[T, ...]`: only T is a type."""
    return _type_name(node) == "Annotated"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bound_identifiers(node: ast.AST) -> Iterable[str]:
    """Identifiers a node binds that are not `ast.Name` nodes (those are checked as names)."""
    if isinstance(node, ast.arg):
        return (node.arg,)
    if isinstance(node, ast.keyword) and node.arg is not None:
        return (node.arg,)
    if isinstance(node, ast.alias) and node.asname is not None:
        return (node.asname,)
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return (node.name,)
    if isinstance(node, ast.MatchMapping) and node.rest is not None:
        return (node.rest,)
    if isinstance(node, ast.Global | ast.Nonlocal):
        return node.names
    if isinstance(node, ast.ClassDef):
        return (node.name,)
    return ()


def _top_level_problem(path: str) -> str | None:
    """Why importing from the top-level package of dotted `path` is not allowed."""
    top = path.split(".")[0]
    if top == "__future__":
        return "'from __future__ import ...' is not allowed: it changes how the code compiles"
    allowed = allowed_modules()
    if top in OPTIONAL_MODULES and top not in allowed:
        return (
            f"import of {path!r} is not allowed: {top} is allowed only where it is installed, "
            "and it is not installed here"
        )
    if top not in allowed:
        return f"import of {path!r} is not allowed (allowed: {', '.join(sorted(allowed))})"
    return None


def _module_path_problem(path: str) -> str | None:
    """Why importing dotted `path` (a module, or a member of one) is not allowed."""
    problem = _top_level_problem(path)
    if problem is not None:
        return problem
    parts = path.split(".")
    for index, part in enumerate(parts[1:], start=1):
        following = parts[index + 1] if index + 1 < len(parts) else None
        if part.startswith("_"):
            return f"import of {path!r} is not allowed: {part!r} is private"
        verdict = banned_attribute(part)
        if verdict is None:
            continue
        if following is not None and following in ALLOWED_AFTER_BANNED.get(part, frozenset()):
            continue
        return f"import of {path!r} is not allowed: {part!r} {verdict[1]}"
    return None


# --- the codec contract --------------------------------------------------------------------


def _module_scope(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes evaluated in the module's namespace (not inside function or class bodies)."""
    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            outer: list[ast.AST] = [*node.decorator_list, *node.args.defaults]
            outer += [d for d in node.args.kw_defaults if d is not None]
            stack += reversed(outer)
        elif isinstance(node, ast.ClassDef):
            stack += reversed([*node.decorator_list, *node.bases, *node.keywords])
        elif isinstance(node, ast.Lambda):
            stack += reversed(node.args.defaults)
        else:
            stack += reversed(list(ast.iter_child_nodes(node)))


def _bindings(nodes: Iterable[ast.AST], name: str) -> list[ast.AST]:
    """Nodes among `nodes` that bind `name` in their namespace."""
    found: list[ast.AST] = []
    for node in nodes:
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                found.append(node)
        elif isinstance(node, ast.alias):
            if (node.asname or node.name.split(".")[0]) == name:
                found.append(node)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar):
            if node.name == name:
                found.append(node)
        elif isinstance(node, ast.MatchMapping) and node.rest == name:
            found.append(node)
    return found


def _class_scope(node: ast.ClassDef) -> Iterator[ast.AST]:
    """Nodes evaluated in a class body's namespace."""
    return _module_scope(ast.Module(body=node.body, type_ignores=[]))


def _check_contract(
    tree: ast.Module, nodes: list[ast.AST], positions: _Positions
) -> list[Violation]:
    violations: list[Violation] = []

    def add(message: str, node: ast.AST | None) -> None:
        line, col = positions.of(node) if node is not None else (None, None)
        violations.append(Violation("contract", message, line, col))

    scope = list(_module_scope(tree))
    classes: dict[str, ast.ClassDef] = {}
    for node in scope:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = node
    globals_: list[ast.Global] = [n for n in nodes if isinstance(n, ast.Global)]
    for spec in CODEC_CONTRACT:
        top = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == spec.name]
        others = [n for n in _bindings(scope, spec.name) if n is not (top[-1] if top else None)]
        others += [g for g in globals_ if spec.name in g.names]
        if not top:
            add(
                f"the module defines no top-level class {spec.name} (the contract needs "
                f"{_signature_list(spec)})",
                None,
            )
        for node in others:
            if isinstance(node, ast.ClassDef):
                how = "more than once" if node in top else "inside a block"
                add(
                    f"class {spec.name} is defined {how}; the contract needs exactly one "
                    f"top-level class statement for {spec.name}",
                    node,
                )
            else:
                add(
                    f"{spec.name} is rebound here; the contract needs exactly one top-level "
                    f"class statement for {spec.name} and nothing else bound to that name",
                    node,
                )
        if top:
            violations += _check_methods(spec, top[-1], classes, positions)
    return violations


def _check_methods(
    spec: ClassSpec, node: ast.ClassDef, classes: dict[str, ast.ClassDef], positions: _Positions
) -> list[Violation]:
    violations: list[Violation] = []

    def add(message: str, where: ast.AST) -> None:
        line, col = positions.of(where)
        violations.append(Violation("contract", message, line, col))

    mro = _linearize(node.name, {**classes, node.name: node})
    if mro is None:
        add(f"class {spec.name} has a circular or inconsistent set of base classes", node)
        return violations
    for method in spec.methods:
        found: ast.AST | None = None
        for owner in mro:
            bindings = _bindings(_class_scope(classes[owner]), method.name)
            if bindings:
                found = bindings[-1]
                break
        if found is not None and not isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef):
            add(
                f"{owner}.{method.name} is assigned, not defined with def; the contract "
                f"needs {_signature(method)}",
                found,
            )
        elif found is None:
            if method.required:
                add(
                    f"class {spec.name} has no method {_signature(method)} (required by the "
                    "codec contract; inherited methods count only from classes in the module)",
                    node,
                )
        else:
            violations += [
                Violation("contract", message, *positions.of(found))
                for message in _method_problems(owner, method, found)
            ]
    return violations


def _linearize(name: str, classes: dict[str, ast.ClassDef]) -> list[str] | None:
    """C3 method resolution order over the module's own classes (built-in bases dropped)."""
    result: dict[str, list[str] | None] = {}
    visiting: set[str] = set()
    order: list[tuple[str, bool]] = [(name, False)]
    while order:
        current, expanded = order.pop()
        if current in result:
            continue
        bases = [
            b.id for b in classes[current].bases if isinstance(b, ast.Name) and b.id in classes
        ]
        if not expanded:
            if current in visiting:
                return None
            visiting.add(current)
            order.append((current, True))
            order += [(base, False) for base in bases if base not in result]
            continue
        visiting.discard(current)
        sequences = [result[base] for base in bases]
        if any(seq is None for seq in sequences):
            return None
        result[current] = _c3_merge(current, [s for s in sequences if s is not None] + [bases])
    return result.get(name)


def _c3_merge(head: str, sequences: list[list[str]]) -> list[str] | None:
    merged = [head]
    pending = [list(seq) for seq in sequences if seq]
    while pending:
        for seq in pending:
            candidate = seq[0]
            if not any(candidate in other[1:] for other in pending):
                break
        else:
            return None
        merged.append(candidate)
        pending = [[c for c in seq if c != candidate] for seq in pending]
        pending = [seq for seq in pending if seq]
    return merged


def _method_problems(
    owner: str, method: MethodSpec, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> list[str]:
    qualified = f"{owner}.{method.name}"
    problems: list[str] = []
    if node.decorator_list:
        problems.append(
            f"{qualified} must be a plain method: decorators are not allowed on contract methods"
        )
    if isinstance(node, ast.AsyncFunctionDef):
        problems.append(f"{qualified} must not be async")
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    needed = len(method.positional_args)
    names = ", ".join(method.positional_args)
    wanted = f"the contract passes {needed} ({names})" if needed else "the contract passes none"
    if not positional:
        if args.vararg is None:
            problems.append(f"{qualified} takes no arguments, not even self; {wanted}")
    else:
        accepted = len(positional) - 1
        required = max(0, len(positional) - len(args.defaults) - 1)
        if args.vararg is None and accepted < needed:
            problems.append(
                f"{qualified} takes {accepted} positional argument"
                f"{'s' if accepted != 1 else ''} after self, {wanted}"
            )
        elif required > needed:
            problems.append(
                f"{qualified} requires {required} positional arguments after self, "
                f"{wanted}: give the others defaults"
            )
    for kwarg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is None:
            problems.append(
                f"{qualified} has keyword-only argument {kwarg.arg!r} without a "
                f"default; {wanted} and nothing else"
            )
    return problems


def _signature(method: MethodSpec) -> str:
    return f"{method.name}({', '.join(('self', *method.positional_args))})"


def _signature_list(spec: ClassSpec) -> str:
    required = [_signature(m) for m in spec.methods if m.required]
    return f"class {spec.name} with {' and '.join(required)}"

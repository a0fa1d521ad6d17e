"""A reader for Grafana Alloy's configuration syntax, enough to check a pipeline's wiring.

Alloy has no Python parser and no binary here. This reads the subset the template's
files use: blocks (``loki.process "name" { ... }``, nested ``stage.json { ... }``),
attributes, strings, numbers, booleans, lists, objects, references
(``loki.write.default.receiver``), function calls (``sys.env("X")``) and ``+``.
Anything else is a syntax error, so a typo fails the test instead of passing unread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[{}\[\](),=+])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Ref:
    """A reference to another component's export, e.g. ``loki.process.service.receiver``."""

    path: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Add:
    left: Any
    right: Any


@dataclass
class Block:
    name: str
    label: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def children(self, name: str) -> list[Block]:
        return [block for block in self.blocks if block.name == name]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise SyntaxError(
                f"alloy: unexpected {text[position : position + 20]!r} on line {line}"
            )
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        if self.index + offset < len(self.tokens):
            return self.tokens[self.index + offset]
        return ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise SyntaxError(f"alloy: expected {value or kind}, found {token[1]!r}")
        self.index += 1
        return token[1]

    def body(self, closing: str | None) -> Block:
        block = Block("", None)
        while self.peek()[0] != "end" and self.peek()[1] != closing:
            name = self.take("ident")
            if self.peek()[1] == "=":
                self.take("punct", "=")
                if name in block.attributes:
                    raise SyntaxError(f"alloy: attribute {name} set twice")
                block.attributes[name] = self.expression()
                continue
            label = None
            if self.peek()[0] == "string":
                label = _unquote(self.take("string"))
            self.take("punct", "{")
            inner = self.body("}")
            self.take("punct", "}")
            block.blocks.append(Block(name, label, inner.attributes, inner.blocks))
        return block

    def expression(self) -> Any:
        value = self.operand()
        while self.peek()[1] == "+":
            self.take("punct", "+")
            value = Add(value, self.operand())
        return value

    def operand(self) -> Any:
        kind, value = self.peek()
        if kind == "string":
            self.index += 1
            return _unquote(value)
        if kind == "number":
            self.index += 1
            return float(value) if "." in value else int(value)
        if value == "[":
            return self.sequence("[", "]")
        if value == "{":
            self.take("punct", "{")
            items: dict[str, Any] = {}
            while self.peek()[1] != "}":
                key_kind, key = self.peek()
                self.index += 1
                if key_kind not in {"ident", "string"}:
                    raise SyntaxError(f"alloy: bad object key {key!r}")
                self.take("punct", "=")
                items[_unquote(key) if key_kind == "string" else key] = self.expression()
                if self.peek()[1] == ",":
                    self.take("punct", ",")
            self.take("punct", "}")
            return items
        if kind == "ident":
            self.index += 1
            if value in {"true", "false"}:
                return value == "true"
            if value == "null":
                return None
            if self.peek()[1] == "(":
                return Call(value, tuple(self.sequence("(", ")")))
            return Ref(value)
        raise SyntaxError(f"alloy: unexpected {value!r}")

    def sequence(self, opening: str, closing: str) -> list[Any]:
        self.take("punct", opening)
        items = []
        while self.peek()[1] != closing:
            items.append(self.expression())
            if self.peek()[1] == ",":
                self.take("punct", ",")
        self.take("punct", closing)
        return items


def _unquote(token: str) -> str:
    return bytes(token[1:-1], "utf-8").decode("unicode_escape")


def parse(text: str) -> list[Block]:
    """The top-level blocks (components) of an Alloy file."""
    parser = _Parser(text)
    root = parser.body(None)
    parser.take("end")
    if root.attributes:
        raise SyntaxError(f"alloy: attributes outside a block: {sorted(root.attributes)}")
    return root.blocks


def references(value: Any) -> list[Ref]:
    """Every reference inside an attribute value or block, depth first."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Call):
        return [ref for arg in value.args for ref in references(arg)]
    if isinstance(value, Add):
        return references(value.left) + references(value.right)
    if isinstance(value, list):
        return [ref for item in value for ref in references(item)]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in references(item)]
    if isinstance(value, Block):
        found = [ref for item in value.attributes.values() for ref in references(item)]
        return found + [ref for child in value.blocks for ref in references(child)]
    return []


# --- wiring ---------------------------------------------------------------------------


def components(blocks: list[Block]) -> dict[str, Block]:
    """Top-level blocks by ``name.label``; a component declared twice fails."""
    found: dict[str, Block] = {}
    for block in blocks:
        key = f"{block.name}.{block.label}"
        assert key not in found, f"{key} declared twice"
        found[key] = block
    return found


def assert_wiring(blocks: list[Block]) -> dict[str, Block]:
    """Every reference names a declared component; every component but the writer is read."""
    declared = components(blocks)
    referenced: set[str] = set()
    for key, block in declared.items():
        for ref in references(block):
            target = next((name for name in declared if ref.path.startswith(name + ".")), None)
            assert target, f"{key} refers to undeclared {ref.path}"
            referenced.add(target)
    # Log sources push (forward_to) and nothing names them; everything else is read.
    sources = {key for key in declared if key.startswith("loki.source.")}
    assert sources
    assert set(declared) - referenced == sources, set(declared) - referenced
    assert any(key.startswith("loki.write.") for key in referenced), "nothing writes to Loki"
    return declared

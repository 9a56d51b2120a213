"""A strict checker for the D programs tracebridge generates.

No D (DTrace) parser is packaged for Python or Debian (``apt-cache search
dtrace`` finds only node-dtrace-provider and perf-tools), so this is a small
one, written from libdtrace's lexer (dt_lex.l) and grammar: it accepts the
subset of D the templates use and rejects anything else, so a stray
character, an unbalanced brace, a bad probe description or a printf whose
conversions do not match its arguments fails the test.

    program    := ( comment | pragma | clause )*
    clause     := pspec ( "," pspec )* [ "/" expression "/" ] "{" statement ( ";" statement )* [";"] "}"
    pspec      := RGX_PSPEC of dt_lex.l, at most 4 ':'-separated fields
    statement  := lvalue ( "=" | "+=" | "-=" ) expression | lvalue ( "++" | "--" ) | call
    lvalue     := ( "self->" | "this->" ) ident [ "[" expression ( "," expression )* "]" ]
                | "@" [ident] "[" expression ( "," expression )* "]"
    call       := ( "printf" | "trace" | "printa" ) "(" arguments ")"
    expression := (operands, operators and parentheses of D; calls to known functions)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PSPEC = re.compile(r"[-$:a-zA-Z_.?*\\\[\]!][-$:0-9a-zA-Z_.`?*\\\[\]!]*")
FIELD_MAX = (63, 63, 191, 63)
_IDENT = re.compile(r"[a-zA-Z_`][0-9a-zA-Z_`]*")
_INT = re.compile(r"(?:0[xX][0-9A-Fa-f]+|[0-9]+)[uU]?[lL]?[lL]?")
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')
_OPERATORS = sorted("""-> ++ -- << >> <= >= == != && || ^^ += -= *= /= %= &= |= ^= <<= >>=
    + - * / % & | ^ ~ ! < > = ? : , ( ) [ ] { } ; .""".split(), key=len, reverse=True)
#: Identifiers a template may read: D built-in variables.
BUILTINS = {"probefunc", "probemod", "probename", "probeprov", "timestamp", "vtimestamp", "walltimestamp",
            "cpu", "tid", "pid", "execname", "curthread", "caller", "stackdepth", "epid", "id"} | {
    f"arg{i}" for i in range(10)}
#: Functions and actions: name -> (min args, max args).
FUNCTIONS = {"count": (0, 0), "quantize": (1, 1), "avg": (1, 1), "sum": (1, 1), "min": (1, 1), "max": (1, 1),
             "stack": (0, 1), "printf": (1, 32), "printa": (1, 32), "trace": (1, 1)}
_PRAGMA = re.compile(r"#pragma D option [a-z_]+(?:=[0-9a-z]+)?")
_CONVERSION = re.compile(r"%(%|[-+ #0]*(\*|[0-9]*)(?:\.[0-9]+)?(?:l|ll|h|hh)?([diouxXcsp@a-zA-Z]))")


class DError(ValueError):
    pass


@dataclass
class Clause:
    descriptions: list[str]
    predicate: list[str] | None
    statements: list[list[str]]


def check(source: str) -> list[Clause]:
    """Parse ``source``; raise :class:`DError` at the first thing libdtrace would reject."""
    clauses = []
    i, n = 0, len(source)
    while True:
        i = _skip_space_and_comments(source, i)
        if i >= n:
            return clauses
        if source.startswith("#", i):
            end = source.find("\n", i)
            line = source[i:end if end >= 0 else n]
            if not _PRAGMA.fullmatch(line) or (i and source[i - 1] != "\n"):
                raise DError(f"bad control line {line!r}")
            i = end if end >= 0 else n
            continue
        descriptions = []
        while True:
            m = PSPEC.match(source, i)
            if not m:
                raise DError(f"expected a probe description at {source[i:i + 40]!r}")
            descriptions.append(_check_description(m.group()))
            i = _skip_space_and_comments(source, m.end())
            if source.startswith(",", i):
                i = _skip_space_and_comments(source, i + 1)
                continue
            break
        predicate = None
        if source.startswith("/", i) and not source.startswith("/*", i):
            tokens, i = _tokens_until(source, i + 1, "/")
            predicate = tokens
            _expression(predicate)
            i = _skip_space_and_comments(source, i)
        if not source.startswith("{", i):
            raise DError(f"expected '{{' at {source[i:i + 40]!r}")
        tokens, i = _tokens_until(source, i + 1, "}")
        clauses.append(Clause(descriptions, predicate, _statements(tokens)))


def _check_description(text: str) -> str:
    fields = text.split(":")
    if len(fields) > 4:
        raise DError(f"more than four fields in {text!r}")
    if "$" in text:
        raise DError(f"'$' (a macro) in probe description {text!r}")
    for field, limit in zip(reversed(fields), reversed(FIELD_MAX)):
        if len(field) > limit:
            raise DError(f"field of {len(field)} characters in {text!r}")
    return text


def _skip_space_and_comments(source: str, i: int) -> int:
    n = len(source)
    while i < n:
        if source[i] in " \t\n\r\f\v":
            i += 1
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise DError("unterminated comment")
            if "/*" in source[i + 2:end]:
                raise DError("'/*' inside a comment")
            i = end + 2
        else:
            break
    return i


def _tokens_until(source: str, i: int, closer: str) -> tuple[list[str], int]:
    """S0 tokens up to ``closer`` at nesting depth 0; returns them and the index after it."""
    tokens: list[str] = []
    n = len(source)
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    while True:
        i = _skip_space_and_comments(source, i)
        if i >= n:
            raise DError(f"missing {closer!r}")
        if not stack and source.startswith(closer, i):
            return tokens, i + len(closer)
        for pattern in (_STRING, _INT, _IDENT):
            m = pattern.match(source, i)
            if m:
                token = m.group()
                break
        else:
            if source[i] == "@":
                m = _IDENT.match(source, i + 1)
                token = "@" + (m.group() if m else "")
            else:
                token = next((op for op in _OPERATORS if source.startswith(op, i)), None)
                if token is None:
                    raise DError(f"stray character {source[i]!r} at {source[i:i + 30]!r}")
        if token in pairs:
            stack.append(pairs[token])
        elif token in (")", "]", "}"):
            if not stack or stack.pop() != token:
                raise DError(f"unbalanced {token!r}")
        tokens.append(token)
        i += len(token)


def _statements(tokens: list[str]) -> list[list[str]]:
    statements, current, depth = [], [], 0
    for token in tokens:
        depth += token in "([" and len(token) == 1
        depth -= token in ")]" and len(token) == 1
        if token == ";" and depth == 0:
            statements.append(current)
            current = []
        else:
            current.append(token)
    if current:
        statements.append(current)
    if not statements:
        raise DError("empty action block")
    for statement in statements:
        _statement(statement)
    return statements


def _statement(tokens: list[str]) -> None:
    if not tokens:
        raise DError("empty statement")
    if tokens[0] in ("printf", "trace", "printa"):
        end = _call(tokens, 0)
        if end != len(tokens):
            raise DError(f"junk after call: {tokens[end:]}")
        return
    end = _lvalue(tokens, 0)
    rest = tokens[end:]
    if rest in (["++"], ["--"]):
        return
    if not rest or rest[0] not in ("=", "+=", "-="):
        raise DError(f"not an assignment or call: {' '.join(tokens)}")
    if tokens[0].startswith("@"):
        if rest[0] != "=" or len(rest) < 3 or rest[1] not in FUNCTIONS or rest[1] in ("printf", "printa", "trace"):
            raise DError(f"aggregation not assigned an aggregating function: {' '.join(tokens)}")
        if _call(tokens, end + 1) != len(tokens):
            raise DError(f"junk after aggregation: {' '.join(tokens)}")
        return
    _expression(rest[1:])


def _lvalue(tokens: list[str], i: int) -> int:
    if tokens[i] in ("self", "this"):
        if tokens[i + 1:i + 2] != ["->"] or not _IDENT.fullmatch(tokens[i + 2] if i + 2 < len(tokens) else ""):
            raise DError(f"bad {tokens[i]}-> reference")
        i += 3
    elif tokens[i].startswith("@"):
        i += 1
    else:
        raise DError(f"bad assignment target {tokens[i]!r}")
    if i < len(tokens) and tokens[i] == "[":
        i = _subscript(tokens, i)
    return i


def _subscript(tokens: list[str], i: int) -> int:
    end = _matching(tokens, i)
    for key in _split_commas(tokens[i + 1:end]):
        _expression(key)
    return end + 1


def _call(tokens: list[str], i: int) -> int:
    name = tokens[i]
    if name not in FUNCTIONS or tokens[i + 1:i + 2] != ["("]:
        raise DError(f"unknown function {name!r}")
    end = _matching(tokens, i + 1)
    args = _split_commas(tokens[i + 2:end]) if end > i + 2 else []
    low, high = FUNCTIONS[name]
    if not low <= len(args) <= high:
        raise DError(f"{name} takes {low}..{high} arguments, got {len(args)}")
    for arg in args:
        _expression(arg)
    if name in ("printf", "printa"):
        if not _STRING.fullmatch(args[0][0]) or len(args[0]) != 1:
            raise DError(f"{name} needs a literal format string")
        wanted = 0
        for m in _CONVERSION.finditer(args[0][0]):
            if m.group(1) != "%":
                wanted += 1 + (m.group(2) == "*")
        if name == "printf" and wanted != len(args) - 1:
            raise DError(f"printf format wants {wanted} arguments, got {len(args) - 1}")
    return end + 1


def _matching(tokens: list[str], i: int) -> int:
    closer = {"(": ")", "[": "]"}[tokens[i]]
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == tokens[i]:
            depth += 1
        elif tokens[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    raise DError("unbalanced brackets")


def _split_commas(tokens: list[str]) -> list[list[str]]:
    parts, current, depth = [], [], 0
    for token in tokens:
        if token in ("(", "["):
            depth += 1
        elif token in (")", "]"):
            depth -= 1
        if token == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    if any(not part for part in parts):
        raise DError("empty argument")
    return parts


_BINARY = {"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "<", ">", "<=", ">=", "==", "!=", "&&", "||", "^^"}
_UNARY = {"-", "!", "~", "+"}


def _expression(tokens: list[str]) -> None:
    """Operand (operator operand)*, operands being literals, variables, calls or (expression)."""
    if not tokens:
        raise DError("empty expression")
    i = 0
    while True:
        while i < len(tokens) and tokens[i] in _UNARY:
            i += 1
        if i >= len(tokens):
            raise DError(f"expression ends with an operator: {' '.join(tokens)}")
        token = tokens[i]
        if token == "(":
            end = _matching(tokens, i)
            _expression(tokens[i + 1:end])
            i = end + 1
        elif token in FUNCTIONS:
            i = _call(tokens, i)
        elif token in ("self", "this"):
            i = _lvalue(tokens, i)
        elif token in BUILTINS or _INT.fullmatch(token) or _STRING.fullmatch(token):
            i += 1
        else:
            raise DError(f"unknown operand {token!r} in {' '.join(tokens)}")
        if i == len(tokens):
            return
        if tokens[i] not in _BINARY:
            raise DError(f"expected an operator at {tokens[i]!r} in {' '.join(tokens)}")
        i += 1

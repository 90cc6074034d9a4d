"""Statements grouped by what they do: PostgreSQL's own parser (pglast) decides.

A fingerprint is libpg_query's: it ignores literal values, parameter numbers, comments
and the length of IN-lists, so ``WHERE id IN (1, 2)`` and ``WHERE id IN ($1)`` share one;
it also gives ``WHERE id = $1`` and ``WHERE id = ANY($1)`` that one (a loop and its batch
are one template: the N+1 rule looks at one request, where they do not meet). The text shown for a
fingerprint is the statement with its values as ``$n`` and IN-lists collapsed to one.
A trailing sqlcommenter comment (``/*traceparent='00-<trace>-<span>-01'*/``) names the
request the statement belongs to.

>>> fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3) AND x = 'a'") == fingerprint(
...     "select * from t where id in ($1) and x = $2 /*traceparent='00-ab-cd-01'*/")
True
>>> normalized("SELECT * FROM t WHERE id IN (1, 2, 3) AND x = 'a' LIMIT 20")
'SELECT * FROM t WHERE id IN ($1) AND x = $2 LIMIT $3'
>>> traceparent("SELECT 1 /*db='x',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/")
('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7')
>>> batch_rewrite("SELECT * FROM messages WHERE session_id = $1 ORDER BY timestamp")
'SELECT * FROM messages WHERE session_id = ANY($1) ORDER BY timestamp'
>>> batch_rewrite("SELECT b.id FROM b WHERE CAST($1 AS integer) = b.author_id")
'SELECT b.id FROM b WHERE b.author_id = ANY($1)'
"""

from __future__ import annotations

from urllib.parse import unquote

from pglast import ast, enums, parse_sql, parser
from pglast.stream import RawStream
from pglast.visitors import Visitor

#: Distinct statement texts whose fingerprint is remembered (then the memory starts afresh).
CACHE_SIZE = 200_000

ParseError = parser.ParseError


def split_comment(sql: str) -> tuple[str, str | None]:
    """``sql`` without its trailing comment, and the comment's body (sqlcommenter puts it last)."""
    body = sql.rstrip().rstrip(";").rstrip()
    if not body.endswith("*/"):
        return sql, None
    start = body.rfind("/*")
    if start < 0:
        return sql, None
    return body[:start].rstrip(), body[start + 2 : -2]


def commenter_tags(comment: str) -> dict[str, str]:
    """sqlcommenter's ``key='url-encoded value'`` pairs, separated by commas."""
    tags: dict[str, str] = {}
    for part in comment.split(","):
        key, sep, value = part.strip().partition("=")
        if sep and len(value) >= 2 and value[0] == value[-1] == "'":
            tags[unquote(key)] = unquote(value[1:-1].replace("\\'", "'"))
    return tags


def traceparent(sql: str) -> tuple[str, str] | None:
    """The (trace id, span id) of a W3C ``traceparent`` in ``sql``'s sqlcommenter comment."""
    _, comment = split_comment(sql)
    if not comment or "traceparent" not in comment:
        return None
    parts = commenter_tags(comment).get("traceparent", "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    return parts[1], parts[2]


def fingerprint(sql: str) -> str:
    """libpg_query's fingerprint of ``sql`` (raises :class:`ParseError` when it does not parse)."""
    return parser.fingerprint(sql)


class _CollapseIn(Visitor):
    def visit_A_Expr(self, ancestors: object, node: ast.A_Expr) -> ast.A_Expr | None:
        if node.kind == enums.A_Expr_Kind.AEXPR_IN and isinstance(node.rexpr, tuple) and len(node.rexpr) > 1:
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=node.lexpr, rexpr=(node.rexpr[0],))
        return None


class _Params(Visitor):
    def __init__(self) -> None:
        self.found: list[ast.ParamRef] = []

    def visit_ParamRef(self, ancestors: object, node: ast.ParamRef) -> None:
        self.found.append(node)


def normalized(sql: str) -> str:
    """``sql`` with values as ``$n``, IN-lists collapsed to one value and comments dropped."""
    text = parser.normalize(split_comment(sql)[0])
    try:
        tree = parse_sql(text)
        _CollapseIn()(tree)
        params = _Params()
        params(tree)
        numbers: dict[int, int] = {}
        for p in sorted(params.found, key=lambda p: p.location):
            p.number = numbers.setdefault(p.number, len(numbers) + 1)
        return ";\n".join(RawStream()(stmt) for stmt in tree)
    except Exception:  # pglast deparses all of PostgreSQL's grammar; keep the text if not
        return text


def _param(node: object) -> ast.ParamRef | None:
    """The parameter in ``$n`` or ``CAST($n AS type)`` (an ORM's typed bind)."""
    if isinstance(node, ast.TypeCast):
        node = node.arg
    return node if isinstance(node, ast.ParamRef) else None


class _AnyParam(Visitor):
    def __init__(self, number: int | None) -> None:
        self.number, self.changed = number, []

    def visit_A_Expr(self, ancestors: object, node: ast.A_Expr) -> ast.A_Expr | None:
        if node.kind != enums.A_Expr_Kind.AEXPR_OP or len(node.name or ()) != 1 or node.name[0].sval != "=":
            return None
        column, param = node.lexpr, _param(node.rexpr)
        if param is None and isinstance(node.rexpr, ast.ColumnRef):
            column, param = node.rexpr, _param(node.lexpr)  # $1 = col, as SQLAlchemy writes it
        if param is None or not isinstance(column, ast.ColumnRef):
            return None
        if self.number is not None and param.number != self.number:
            return None
        self.changed.append(param.number)
        # the bare parameter: PostgreSQL types the array from the column
        return ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP_ANY, name=node.name, lexpr=column, rexpr=param)


def batch_rewrite(sql: str, number: int | None = None) -> str | None:
    """The batched form of a repeated statement: ``col = $n`` becomes ``col = ANY($n)``.

    ``number`` picks the parameter that varies between executions; without it the statement
    must compare exactly one column with a parameter. None when no rewrite applies.
    """
    try:
        tree = parse_sql(sql)
    except ParseError:
        return None
    if len(tree) != 1 or not isinstance(tree[0].stmt, ast.SelectStmt):
        return None
    visitor = _AnyParam(number)
    visitor(tree)
    if len(visitor.changed) != 1:
        return None
    return RawStream()(tree[0])


class Fingerprints:
    """Fingerprints and normalised texts of many statements, remembered by text.

    Statements sent with bound parameters repeat their text exactly, so most lines of a
    log cost a dictionary look-up; statements carrying literals (or a per-request
    comment, stripped first) are parsed once each.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.by_text: dict[str, str | None] = {}
        self.text: dict[str, str] = {}  # fingerprint -> normalised text of its first statement
        self.parsed = 0

    def __call__(self, sql: str) -> str | None:
        """``sql``'s fingerprint, or None when PostgreSQL's parser rejects it."""
        fp = self.by_text.get(sql, False)
        if fp is not False:
            return fp
        if len(self.by_text) >= self.size:
            self.by_text.clear()
        self.parsed += 1
        try:
            fp = parser.fingerprint(sql)
        except ParseError:
            fp = None
        self.by_text[sql] = fp
        if fp is not None and fp not in self.text:
            self.text[fp] = normalized(sql)
        return fp


class _Relations(Visitor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:
        if node.relname not in self.names:
            self.names.append(node.relname)


def relations(sql: str) -> list[str]:
    """The tables ``sql`` reads or writes, in order (a statement's short name).

    >>> relations("SELECT * FROM messages m JOIN sessions s ON s.id = m.session_id")
    ['messages', 'sessions']
    """
    visitor = _Relations()
    try:
        visitor(parse_sql(sql))
    except ParseError:
        return []
    return visitor.names

"""Candidate indexes read from each query's predicates, joins and ORDER BY (parsed with sqlglot).

For every table a query reads, :func:`analyze` sorts the conjuncts of its ``WHERE`` and
``JOIN ... ON`` into equality columns (``=``, ``IN``), range columns (``<``, ``BETWEEN``,
a row comparison, ``LIKE 'prefix%'``) and join columns, and takes the ``ORDER BY`` when
every key comes from that one table. :func:`derive` turns that into a B-tree key the way
a B-tree is read: equality columns first (whatever order they were written in), then
either one range (and the sort, when the sort starts with the range column) or the sort
columns. A predicate no B-tree can serve (a function around the column, a leading
wildcard) becomes a :class:`Flag` with the rewrite that would make it indexable, and is
never turned into a candidate.

Rules stated once:

- ``DESC`` is kept only for a mixed-direction sort (``a DESC, b ASC``); a single-direction
  sort is served by an ascending index scanned backwards, so the key is written ascending.
- Equality predicates whose combined selectivity (1 / distinct values, per column) keeps
  more than :data:`LOW_SELECTIVITY` of the table want no index unless the index also
  serves an ``ORDER BY ... LIMIT`` (a top-N read stops early).
- A lookup by primary key (``id = ...``) needs nothing: the primary key is an index. A join
  on the primary key (``s.id = m.session_id``) is served by it too, so only the table's
  other predicates and sort make its key.

>>> a = analyze("SELECT * FROM jobs WHERE status = :s ORDER BY created_at LIMIT 5", "q")
>>> derive(a)[0].spec.columns
('status', 'created_at')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from workbench import schema
from workbench.engines.base import identifier
from workbench.errors import WorkbenchError

#: Equality predicates keeping more than this share of a table want no index of their own.
LOW_SELECTIVITY = 0.1
#: Longest key derived (equality + range/sort columns).
MAX_KEY_COLUMNS = 4
#: Most INCLUDE columns a covering variant carries (wider ones cost more than the heap visit).
MAX_INCLUDE_COLUMNS = 4


class CandidateError(WorkbenchError):
    """A query cannot be analysed: it does not parse, or names a missing table or column."""


@dataclass(frozen=True)
class IndexSpec:
    """A B-tree index: table, key columns with directions, optional INCLUDE columns (PostgreSQL)."""

    table: str
    columns: tuple[str, ...]
    descending: tuple[bool, ...] = ()
    include: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.descending:
            object.__setattr__(self, "descending", (False,) * len(self.columns))
        for name in (self.table, *self.columns, *self.include):
            identifier(name)
        if len(self.descending) != len(self.columns):
            raise CandidateError(f"{self.label}: one direction per column is needed")

    @property
    def label(self) -> str:
        keys = ", ".join(
            c + (" DESC" if d else "") for c, d in zip(self.columns, self.descending, strict=True)
        )
        inc = f" INCLUDE ({', '.join(self.include)})" if self.include else ""
        return f"{self.table}({keys}){inc}"

    @property
    def name(self) -> str:
        parts = [f"{c}_desc" if d else c for c, d in zip(self.columns, self.descending, strict=True)]
        name = "ix_" + "_".join([self.table, *parts])
        suffix = "_covering" if self.include else ""  # beside the same key without INCLUDE
        return name[: 63 - len(suffix)] + suffix

    @property
    def mixed_directions(self) -> bool:
        return len(set(self.descending)) > 1

    def sql(
        self,
        dialect: str,
        *,
        concurrently: bool = False,
        if_not_exists: bool = True,
        on: tuple[str, str] | None = None,
    ) -> str:
        """``CREATE INDEX`` for ``dialect``; INCLUDE only on PostgreSQL, DESC not on DuckDB.

        ``on``: (index name, quoted table) to build the same key elsewhere (a scratch copy)."""
        keys = ", ".join(
            identifier(c) + (" DESC" if d and dialect != "duckdb" else "")
            for c, d in zip(self.columns, self.descending, strict=True)
        )
        head = (
            "CREATE INDEX "
            + ("CONCURRENTLY " if concurrently else "")
            + ("IF NOT EXISTS " if if_not_exists else "")
        )
        inc = ""
        if self.include and dialect == "postgres":
            inc = " INCLUDE (" + ", ".join(identifier(c) for c in self.include) + ")"
        name, table = on if on is not None else (identifier(self.name), identifier(self.table))
        return f"{head}{name} ON {table} ({keys}){inc}"

    def covers(self, other: IndexSpec) -> bool:
        """True when ``other``'s key is a prefix of this key (same directions, or all flipped)."""
        n = len(other.columns)
        if self.table != other.table or n > len(self.columns) or self.columns[:n] != other.columns:
            return False
        mine = self.descending[:n]
        same = mine == other.descending or mine == tuple(not d for d in other.descending)
        return same and set(other.include) <= set(self.columns) | set(self.include)


#: The plan's four indexes, evaluated like any candidate so each gets a verdict.
PLAN_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("sessions", ("project_id", "created_at"), (False, True)),
    IndexSpec("messages", ("session_id", "timestamp")),
    IndexSpec("session_windows", ("session_id",)),
    IndexSpec("jobs", ("status", "created_at"), (False, True)),
)


@dataclass(frozen=True)
class Flag:
    """A predicate no B-tree can serve, and the rewrite that would make it indexable."""

    query: str
    table: str
    column: str
    predicate: str
    reason: str
    rewrite: str


@dataclass
class Access:
    """How one query reads one table."""

    table: str
    equality: list[str] = field(default_factory=list)
    ranges: list[tuple[str, ...]] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    limit: bool = False
    selected: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    query: str
    sql: str
    accesses: list[Access]
    flags: list[Flag]

    @property
    def tables(self) -> set[str]:
        return {a.table for a in self.accesses}


@dataclass(frozen=True)
class Candidate:
    spec: IndexSpec
    query: str
    reason: str
    source: str = "derived"  # or "plan"


def _known_columns(table: str) -> set[str]:
    return {c.name for c in schema.columns(table)}


def parse(sql: str, query: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.ParseError as e:
        first = str(e).splitlines()[0]
        raise CandidateError(f"Query {query!r} does not parse ({first}): fix its SQL") from None
    if tree is None:
        raise CandidateError(f"Query {query!r} is empty")
    return tree


def analyze(sql: str, query: str) -> Analysis:
    """Read how ``sql`` accesses each table; raise :class:`CandidateError` naming a bad table or column."""
    tree = parse(sql, query)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    accesses: list[Access] = []
    flags: list[Flag] = []
    for select in tree.find_all(exp.Select):
        sources = _sources(select, ctes, query)
        if not sources:
            continue
        by_table: dict[str, Access] = {alias: Access(table) for alias, table in sources.items()}
        conjuncts: list[exp.Expression] = []
        if (where := select.args.get("where")) is not None:
            conjuncts += list(_conjuncts(where.this))
        for join in select.args.get("joins") or []:
            if (on := join.args.get("on")) is not None:
                conjuncts += list(_conjuncts(on))
        for pred in conjuncts:
            _classify(pred, sources, by_table, flags, query)
        _order(select, sources, by_table, query)
        limit = select.args.get("limit") is not None
        for alias, access in by_table.items():
            access.limit = limit
            access.selected = _selected(select, sources, alias, query)
        accesses += by_table.values()
    return Analysis(query, sql, accesses, flags)


def _selected(select: exp.Select, sources: Mapping[str, str], alias: str, query: str) -> list[str]:
    out = []
    for e in select.expressions:
        col = e.unalias()
        if isinstance(col, exp.Column) and (hit := _resolve(col, sources, query)) and hit[0] == alias:
            out.append(hit[1])
    return out


def _sources(select: exp.Select, ctes: set[str], query: str) -> dict[str, str]:
    """alias -> real table, for the tables this SELECT reads directly (CTEs excluded)."""
    tables = []
    if (from_ := select.args.get("from_")) is not None:
        tables.append(from_.this)
    tables += [j.this for j in select.args.get("joins") or []]
    out = {}
    for t in tables:
        if not isinstance(t, exp.Table) or t.name in ctes:
            continue
        if t.name not in schema.TABLES:
            raise CandidateError(
                f"Query {query!r} names table {t.name!r}, which does not exist: expected one of "
                f"{', '.join(schema.TABLES)}"
            )
        out[t.alias_or_name] = t.name
    return out


def _conjuncts(node: exp.Expression) -> Iterable[exp.Expression]:
    node = node.unnest()
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _resolve(col: exp.Column, sources: Mapping[str, str], query: str) -> tuple[str, str] | None:
    """(alias, column) of a column of one of ``sources``; None when it belongs to a CTE."""
    if col.table:
        if col.table not in sources:
            return None
        alias = col.table
    else:
        owners = [a for a, t in sources.items() if col.name in _known_columns(t)]
        if len(owners) != 1:
            if not owners and len(sources) == 1:
                alias = next(iter(sources))
            else:
                return None
        else:
            alias = owners[0]
    if col.name not in _known_columns(sources[alias]):
        raise CandidateError(
            f"Query {query!r} names column {col.name!r}, which table {sources[alias]!r} does not have"
        )
    return alias, col.name


def _is_value(node: exp.Expression) -> bool:
    """A bound value or constant: no column inside."""
    return node.find(exp.Column) is None and not isinstance(node, exp.Subquery | exp.Select)


def _flag(pred, side, sources, query, flags, reason, rewrite) -> None:
    col = side if isinstance(side, exp.Column) else side.find(exp.Column)
    hit = _resolve(col, sources, query) if col is not None else None
    if hit is None:
        return
    shown = pred.transform(lambda n: exp.Var(this=f":{n.name}") if isinstance(n, exp.Placeholder) else n)
    flags.append(Flag(query, sources[hit[0]], hit[1], shown.sql("postgres"), reason, rewrite))


_DATE_FUNCS = (exp.Date, exp.DateTrunc, exp.TimestampTrunc, exp.Extract, exp.Cast, exp.TsOrDsToDate)


def _rewrite_for(func: exp.Expression, column: str) -> str:
    if isinstance(func, _DATE_FUNCS):
        return (
            f"compare the bare column with a half-open range: {column} >= :day AND {column} < :day + "
            "interval '1 day' (a B-tree on it then serves the range)"
        )
    if isinstance(func, exp.Lower | exp.Upper):
        return f"an expression index on {func.sql('postgres')}, or store the value normalised and compare {column}"  # noqa: E501
    return f"move the function to the value side and compare {column} itself, or add an expression index"


def _classify(pred, sources, by_table, flags, query) -> None:
    def flag(side: exp.Expression, reason: str, rewrite: str) -> None:
        _flag(pred, side, sources, query, flags, reason, rewrite)

    if isinstance(pred, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE | exp.NEQ):
        left, right = pred.this, pred.expression
        if _is_value(left) and not _is_value(right):
            left, right = right, left
        if isinstance(left, exp.Tuple) and isinstance(right, exp.Tuple):
            cols = [_resolve(c, sources, query) for c in left.expressions if isinstance(c, exp.Column)]
            if (
                cols
                and all(cols)
                and len({a for a, _ in cols}) == 1
                and isinstance(pred, exp.GT | exp.GTE | exp.LT | exp.LTE)
            ):
                by_table[cols[0][0]].ranges.append(tuple(c for _, c in cols))
            return
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            for side in (left, right):
                if (hit := _resolve(side, sources, query)) is not None and isinstance(pred, exp.EQ):
                    by_table[hit[0]].joins.append(hit[1])
            return
        if not _is_value(right):
            return
        if isinstance(left, exp.Column):
            hit = _resolve(left, sources, query)
            if hit is None:
                return
            if isinstance(pred, exp.EQ):
                by_table[hit[0]].equality.append(hit[1])
            elif not isinstance(pred, exp.NEQ):
                by_table[hit[0]].ranges.append((hit[1],))
        elif (col := left.find(exp.Column)) is not None:
            flag(left, f"a function ({left.key.upper()}) wraps the column", _rewrite_for(left, col.name))
    elif isinstance(pred, exp.Between) and isinstance(pred.this, exp.Column):
        if (hit := _resolve(pred.this, sources, query)) is not None:
            by_table[hit[0]].ranges.append((hit[1],))
    elif isinstance(pred, exp.In):
        if isinstance(pred.this, exp.Column) and (hit := _resolve(pred.this, sources, query)) is not None:
            by_table[hit[0]].equality.append(hit[1])
    elif isinstance(pred, exp.Like | exp.ILike):
        pattern = pred.expression
        if not isinstance(pred.this, exp.Column):
            col = pred.this.find(exp.Column)
            flag(pred.this, "a function wraps the column", _rewrite_for(pred.this, col.name if col else "?"))
        elif isinstance(pattern, exp.Literal) and pattern.this[:1] in ("%", "_"):
            flag(
                pred.this,
                "a leading wildcard: a B-tree is ordered by the first characters",
                "a trigram GIN index (CREATE EXTENSION pg_trgm; USING gin (col gin_trgm_ops)) or full-text "
                "search; a B-tree serves only LIKE 'prefix%'",
            )
        elif isinstance(pred, exp.ILike):
            flag(
                pred.this,
                "ILIKE folds case, which a plain B-tree does not",
                "an expression index on lower(col) and compare lower(col) LIKE lower(:pattern)",
            )
        elif (hit := _resolve(pred.this, sources, query)) is not None:
            by_table[hit[0]].ranges.append((hit[1],))


def _order(select, sources, by_table, query) -> None:
    order = select.args.get("order")
    if order is None:
        return
    keys = []
    for o in order.expressions:
        col = o.this
        if not isinstance(col, exp.Column):
            return
        hit = _resolve(col, sources, query)
        if hit is None:
            return
        keys.append((hit, bool(o.args.get("desc"))))
    if len({alias for (alias, _), _ in keys}) == 1:
        alias = keys[0][0][0]
        by_table[alias].sort = [(c, d) for (_, c), d in keys]


def derive(
    analysis: Analysis,
    distinct: Mapping[tuple[str, str], int] | None = None,
    *,
    covering: bool = False,
) -> list[Candidate]:
    """One candidate per table access that an index can serve (see the module's rules).

    ``distinct`` maps (table, column) to its number of distinct values (an equality keeps
    1/n of the rows); a column without it is assumed selective. With ``covering`` (PostgreSQL),
    a query that selects at most :data:`MAX_INCLUDE_COLUMNS` columns beyond the key also gets
    a covering variant, the same key with ``INCLUDE`` (those columns), so that it can be
    answered by an index-only scan; both are measured and the selection keeps the one that
    earns its size and write cost.
    """
    out: list[Candidate] = []
    for a in analysis.accesses:
        if "id" in a.equality:
            continue  # a primary-key lookup
        # A join on the primary key is served by it: the table's other columns make the key.
        eq = [c for c in dict.fromkeys(a.equality + a.joins) if c != "id"]
        selectivity = 0.0  # unknown: assumed selective
        known = [n for c in eq if (n := (distinct or {}).get((a.table, c)))]
        if known:
            selectivity = 1.0
            for n in known:
                selectivity /= n
        sort = [(c, d) for c, d in a.sort if c not in eq]
        cols: list[str] = list(eq)
        dirs: list[bool] = [False] * len(eq)
        reason = []
        if eq:
            reason.append("equality on " + ", ".join(eq))
        serves_sort = False
        if a.ranges:
            rng = a.ranges[0]
            cols += [c for c in rng if c not in cols]
            dirs += [False] * (len(cols) - len(dirs))
            reason.append("then the range on " + ", ".join(rng))
            if sort and sort[0][0] == rng[0]:
                for c, _ in sort:
                    if c not in cols:
                        cols.append(c)
                dirs = _directions(cols, sort, len(eq))
                serves_sort = True
        elif sort:
            cols += [c for c, _ in sort]
            dirs = _directions(cols, sort, len(eq))
            serves_sort = True
            reason.append("then the sort " + ", ".join(c + (" DESC" if d else "") for c, d in sort))
        if not cols or cols == ["id"] or (cols[0] == "id" and not eq):
            continue
        top_n = serves_sort and a.limit
        if eq and not a.ranges and not top_n and selectivity > LOW_SELECTIVITY:
            continue  # low selectivity: a scan reads little more than the index would
        cols, dirs = cols[:MAX_KEY_COLUMNS], dirs[:MAX_KEY_COLUMNS]
        spec = IndexSpec(a.table, tuple(cols), tuple(dirs))
        out.append(Candidate(spec, analysis.query, "; ".join(reason)))
        rest = [c for c in dict.fromkeys(a.selected) if c not in cols]
        if covering and 0 < len(rest) <= MAX_INCLUDE_COLUMNS:
            wide = IndexSpec(a.table, tuple(cols), tuple(dirs), tuple(rest))
            why = "; ".join([*reason, "INCLUDE the other selected columns for an index-only scan"])
            out.append(Candidate(wide, analysis.query, why))
    return out


def _directions(cols: Sequence[str], sort: Sequence[tuple[str, bool]], n_eq: int) -> list[bool]:
    """Per-column DESC flags: all ascending unless the sort mixes directions."""
    directions = {c: d for c, d in sort}
    mixed = len(set(directions.values())) > 1
    if not mixed:
        return [False] * len(cols)
    first = sort[0][1]
    # Normalise so the first sort column is ascending (the flipped index is the same index).
    return [False if i < n_eq else (directions.get(c, first) != first) for i, c in enumerate(cols)]


def dedupe(candidates: Iterable[Candidate]) -> dict[IndexSpec, list[Candidate]]:
    """Candidates grouped by index (the same key derived for several queries)."""
    grouped: dict[IndexSpec, list[Candidate]] = {}
    for c in candidates:
        grouped.setdefault(c.spec, []).append(c)
    return grouped


def parse_existing(
    table: str, columns: str, sql: str | None = None, dialect: str = "postgres"
) -> IndexSpec | None:
    """An existing index from a ``list_indexes`` row: its ``CREATE INDEX`` read with sqlglot
    (key columns, directions, PostgreSQL's ``INCLUDE``), else its column text (``a, b DESC``
    or ``[a, b]``). None for an index on expressions, which no plain key can stand in for."""
    if sql:
        try:
            params = sqlglot.parse_one(sql, read=dialect).this.args["params"]
            keys = params.args["columns"]
            if not all(isinstance(k, exp.Ordered) and isinstance(k.this, exp.Column) for k in keys):
                return None
            include = tuple(i.name for i in params.args.get("include") or [])
            cols = tuple(k.this.name for k in keys)
            return IndexSpec(table, cols, tuple(bool(k.args.get("desc")) for k in keys), include)
        except (sqlglot.errors.SqlglotError, AttributeError, KeyError):
            pass  # not a statement sqlglot knows: fall back to the column text
    parts = [p.strip().strip('"') for p in columns.strip("[]").split(",") if p.strip()]
    cols, dirs = [], []
    for p in parts:
        words = p.split()
        cols.append(words[0].strip('"'))
        dirs.append(len(words) > 1 and words[1].upper() == "DESC")
    try:
        return IndexSpec(table, tuple(cols), tuple(dirs))
    except WorkbenchError:  # an expression, not a column name
        return None


def redundant(indexes: Mapping[str, IndexSpec], others: Iterable[IndexSpec] = ()) -> dict[str, str]:
    """Existing indexes whose key is a prefix of another index: name -> the index that covers it."""
    pool = list(indexes.items()) + [(o.name, o) for o in others]
    out = {}
    for name, spec in indexes.items():
        for other_name, other in pool:
            if other_name != name and other != spec and other.covers(spec):
                out[name] = other.label
                break
    return out

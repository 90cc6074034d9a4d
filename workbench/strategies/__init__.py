"""Ways to load "a project's N most recent sessions with their messages and windows".

Every built-in strategy returns the same Python structure: a list of session dicts
(newest first), each with ``messages`` (in ``timestamp, id`` order) and ``windows`` (in
``start_time, id`` order) as lists of dicts, values normalised to ``datetime``, ``int``,
``bool``, ``str`` and ``None``. :func:`check_equal` runs them all on one engine and
refuses to go on when any differs, so no timing of a wrong answer is shown.

============== ==================================================== ====================
strategy       what it runs                                         statements
============== ==================================================== ====================
n_plus_one     "N+1 (today)": sessions, then per session its         1 + 2N
               messages and windows
joined         "JOIN (plan)": sessions ⟕ messages ⟕ windows (m×w)  1
per_relation   sessions ⟕ messages, sessions ⋈ windows              2
batch          sessions, then ``session_id IN (...)`` per relation  3 (1 when N = 0)
               (``= ANY(:ids::bigint[])`` on PostgreSQL)
aggregate      one row per session, children aggregated in the DB   1
============== ==================================================== ====================

Statements are counted, not assumed: :class:`CountingEngine` wraps an engine's
``execute`` and counts (and optionally records) every statement.

**Your own strategies.** :func:`check_equal`, :func:`compare`, :func:`scaling` and
:func:`network.sweep <workbench.strategies.network.sweep>` take ``strategies=``: built-in
names, functions ``load(db, project_id, limit)`` returning what they loaded, a
:class:`Strategy` (with a statement count the check holds it to, and a label), or a
``.sql`` file of your own (:func:`from_sql`: one statement in PostgreSQL syntax binding
``:project_id`` and ``:limit``, returning its rows as dicts). The first is the reference
the others must equal, whatever shape they return. Nothing is registered:
:data:`STRATEGIES` (the built-ins) is read-only. Notebook 02's last section compares a
LATERAL join and a window function (``queries/examples/``) against an N+1 of your own.

Modules: ``loading`` (the strategies, counted and checked), ``experiments`` (compare,
scaling, crossings, the access-path indexes), ``costs`` (one N+1 statement's cost,
index effects read from plans, the JOIN's row multiplication), ``verdicts`` (the
fastest per engine and the plan's JOIN judged, in words), ``network`` (the RTT sweep
through the latency proxy), ``production`` (the decision under the production profile).

>>> sessions = batch(engine, project_id=1, limit=10)            # doctest: +SKIP
>>> loads = check_equal(engine, project_id=1, limit=10)          # doctest: +SKIP
>>> mine = Strategy("mine", my_loader, statements=lambda n: 1 + n)           # doctest: +SKIP
>>> compare(engines, 1, 20, strategies=["n_plus_one", mine, "my/last10.sql"])  # doctest: +SKIP
"""

from workbench.strategies.costs import (
    index_effect,
    multiplication,
    statement_cost,
    statement_cost_sentence,
    statement_cost_verdicts,
    worst_sessions,
)
from workbench.strategies.experiments import (
    ACCESS_PATH_INDEXES,
    compare,
    crossings,
    drop_indexes,
    ensure_indexes,
    log_sizes,
    scaling,
)
from workbench.strategies.loading import (
    MESSAGE_COLUMNS,
    SESSION_COLUMNS,
    STRATEGIES,
    WINDOW_COLUMNS,
    CountingEngine,
    Load,
    Loader,
    Session,
    Statement,
    Strategy,
    StrategyLike,
    StrategyMismatchError,
    accounting,
    aggregate,
    as_strategy,
    batch,
    check_equal,
    first_difference,
    from_sql,
    joined,
    label,
    labelled,
    largest_project,
    n_plus_one,
    page_sessions,
    payload_bytes,
    per_relation,
    resolve,
    run,
    server_time_ms,
    strategy,
    words,
)
from workbench.strategies.verdicts import (
    PLAN_WORDS,
    best_verdicts,
    conclusions,
    join_verdicts,
    recommend,
    scaling_conclusions,
)

__all__ = [
    "ACCESS_PATH_INDEXES",
    "PLAN_WORDS",
    "best_verdicts",
    "index_effect",
    "join_verdicts",
    "label",
    "labelled",
    "words",
    "multiplication",
    "statement_cost",
    "statement_cost_sentence",
    "statement_cost_verdicts",
    "worst_sessions",
    "CountingEngine",
    "Load",
    "Loader",
    "MESSAGE_COLUMNS",
    "SESSION_COLUMNS",
    "STRATEGIES",
    "Session",
    "Statement",
    "Strategy",
    "StrategyMismatchError",
    "WINDOW_COLUMNS",
    "StrategyLike",
    "accounting",
    "as_strategy",
    "from_sql",
    "page_sessions",
    "resolve",
    "aggregate",
    "batch",
    "check_equal",
    "compare",
    "conclusions",
    "crossings",
    "drop_indexes",
    "ensure_indexes",
    "first_difference",
    "joined",
    "largest_project",
    "log_sizes",
    "n_plus_one",
    "payload_bytes",
    "per_relation",
    "recommend",
    "run",
    "scaling",
    "scaling_conclusions",
    "server_time_ms",
    "strategy",
]

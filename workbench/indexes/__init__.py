"""The index lab: workload, candidate indexes, evaluation, selection, pagination, migrations.

- :mod:`~workbench.indexes.workload`: the queries with frequencies (a profile's traffic mix, a
  statement log) and parameters drawn from the data or a values file
- :mod:`~workbench.indexes.candidates`: keys derived with sqlglot; non-sargable predicates flagged
- :mod:`~workbench.indexes.evaluate`: HypoPG planner costs, real builds measured on each engine
- :mod:`~workbench.indexes.select`: the set chosen for the whole workload within budgets
- :mod:`~workbench.indexes.pagination`: the plan's cursor, OFFSET and keyset, timed and checked
- :mod:`~workbench.indexes.migrations`: golang-migrate pairs per dialect, beside a team's own
- :mod:`~workbench.indexes.advisor`: all of it on one engine, and what ``workbench advise`` prints
- :mod:`~workbench.indexes.decisions`: the plan items' verdicts under the production profile
"""

"""The index lab: workload, candidate indexes, evaluation, selection, pagination, migrations.

- :mod:`~workbench.indexes.workload`: the queries with frequencies and parameters drawn from the data
- :mod:`~workbench.indexes.candidates`: keys derived with sqlglot; non-sargable predicates flagged
- :mod:`~workbench.indexes.evaluate`: HypoPG planner costs, real builds measured on each engine
- :mod:`~workbench.indexes.select`: the set chosen for the whole workload within budgets
- :mod:`~workbench.indexes.pagination`: the plan's cursor, OFFSET and keyset, timed and checked
- :mod:`~workbench.indexes.migrations`: golang-migrate pairs per dialect
"""

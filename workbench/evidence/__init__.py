"""Evidence from production: the N+1s and the real workload in what PostgreSQL records.

One streaming pass (:func:`analysis.analyse`) over statement logs and pg_stat_statements:

- ``readers``      jsonlog, csvlog, stderr (``prefix``: a declared ``log_line_prefix``),
                   pg_stat_statements CSV exports or a live server (read-only); bad lines
                   quarantined with file, line and reason (``records``: the shared pieces)
- ``fingerprint``  pglast (libpg_query) fingerprints, normalised texts, the batch rewrite,
                   sqlcommenter ``traceparent`` comments
- ``grouping``     statements into requests: trace id, else session + transaction + pauses,
                   else application_name; the key used is reported
- ``detect``       the N+1 rule (Sentry's: sequential, > 5, > 50 ms, after a source)
- ``analysis``     templates (calls, time, P50/P99), requests, findings ranked by saving
- ``check``        a proposed batch run on a sample: the same rows, then timed
- ``export``       findings, the workload ``advise --workload`` reads, the mix, quarantine
- ``capture``      a throwaway PostgreSQL logging every statement; the service's traffic
- ``conclude``, ``figures``   notebook 06's conclusions and figure

``workbench detect PATH... [--url URL]`` runs it from the command line.
"""

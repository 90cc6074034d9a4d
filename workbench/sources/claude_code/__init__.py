"""Claude Code transcript trees as a workbench Dataset, and back.

``ingest`` reads ``~/.claude/projects``-style trees (see the fixtures' FORMAT.md) in
one streaming pass and writes a Dataset; ``write_transcripts`` writes a Dataset back
as a tree; ``daily_usage``/``session_usage``/``block_usage`` give ccusage's numbers.

How transcripts map to the tables:

- **projects**: one per project folder (``projects/<encoded-cwd>``); ``path`` is the
  most common ``cwd`` of its entries (the folder name loses information), ``name`` its
  last component; id = 63-bit BLAKE2b of the folder name.
- **sessions**: one per ``sessionId``. A subagent transcript (``agent-*.jsonl`` beside
  the sessions, or ``<session>/subagents/agent-*.jsonl``) is its own session with
  ``is_sidechain`` and external id ``<sessionId>/agent-<agentId>``, so the parent's rows
  are not mixed with its subagents'. created/updated = first/last message; ``model``
  and ``git_branch`` are the most frequent non-empty values (``""`` branches -> NULL);
  ``title`` is the last ``custom-title``, else ``ai-title``, else a ``summary`` whose
  ``leafUuid`` is one of the session's messages.
- **messages**: one row per ``user``/``assistant`` line (Claude Code writes one line
  per content block), so a streamed response is several rows. Content is the text for
  text blocks, compact JSON for tool_use/tool_result/thinking/image blocks; type is
  the block type, ``mixed`` for several kinds, ``other`` for unknown blocks. Token
  usage is kept only on the copy ccusage counts: per (message.id, requestId) the copy
  with the largest token total (the first in file order on a tie); other copies have
  NULL usage. The kept copy's timestamp dates the usage. Id = hash of (file, line).
- **session_windows**: ``workbench.windows.windows`` over each session's messages.
- **jobs**: empty (an ingest runs no jobs).
- Every other entry type is counted and kept verbatim in ``raw_entries.parquet``
  (file, line, type, session, timestamp, json); bad lines go to ``quarantine.jsonl``
  (file, line, reason, detail, bytes, raw prefix). ``message_lines.parquet`` keeps each
  message's source file/line and raw usage, so an update can rebuild the tables.

Agreement with ccusage (``daily``/``session``/``blocks --timezone UTC``): token sums
match per day, per session and per 5-hour block. ccusage's session rows are transcript
files: a subagent's file under ``<session>/subagents/`` counts for its session, an older
``agent-<id>.jsonl`` beside the sessions has a row of its own (``session_usage`` does the
same; the sessions table instead gives every subagent a session of its own).

Deliberate differences: only ``assistant`` lines count usage (ccusage would count usage
on any line type; none exist in real files); a usage line ccusage rejects for an empty
or non-semver ``version``/id field is counted here; a tie between copies goes to the
first in file order (ccusage prefers a copy with a ``speed`` field);
``cache_creation_input_tokens`` is used, not the 5m/1h breakdown (they are equal in
every real file).
"""

from workbench.lazy import lazy_exports

# Imported lazily (PEP 562): parser processes import this package's ``reader`` and must
# not pay for polars, which ``usage`` and ``writer`` need.
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "pipeline": ("IngestReport", "ingest"),
        "reader": ("SourceError", "default_roots"),
        "writer": ("encode_cwd", "write_transcripts"),
        "usage": (
            "CCUSAGE_VERSION", "block_usage", "ccusage_frame", "daily_usage", "find_ccusage", "run_ccusage",
            "session_usage", "usage_entries",
        ),
    },
)  # fmt: skip

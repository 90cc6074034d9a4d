"""A larger realistic transcript tree made from the four real fixture transcripts.

The fixture tree holds four sessions: too few for a tail. :func:`replicate` writes ``sessions``
copies with fresh ids (UUIDs, ``msg_``/``req_``/``toolu_`` ids), a working directory per
project (Zipf-like project sizes), shifted timestamps (varied days and hours), and varied
lengths: a copy keeps a prefix of its transcript, or repeats it after a pause (minutes,
or with probability ``long_pause`` more than five hours, which opens a new 5-hour window),
with lengths drawn from a lognormal so messages per session are heavy-tailed.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

FIXTURES = Path("/work/shared/fixtures/claude-code")
_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?:msg|req|toolu)_[A-Za-z0-9]+"
)
_STAMP = re.compile(r'"timestamp":"([0-9T:.\-]+)Z"')
_CWD = re.compile(r'"cwd":"[^"]*"')
_SESSION = re.compile(r'"sessionId":"([^"]+)"')


def _fresh(key: str, old: str) -> str:
    h = hashlib.sha256(f"{key}/{old}".encode()).hexdigest()
    if "_" in old:
        return old.split("_", 1)[0] + "_" + h[:24]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _rewrite(line: str, session: str, session_key: str, key: str, shift: timedelta, project: int) -> str:
    """One transcript line with fresh ids (the session's id fixed per copy), shifted times, a project."""

    def stamp(m: re.Match) -> str:
        moved = datetime.fromisoformat(m.group(1)) + shift
        return f'"timestamp":"{moved.isoformat(timespec="milliseconds")}Z"'

    line = _ID.sub(lambda m: _fresh(session_key if m.group(0) == session else key, m.group(0)), line)
    return _CWD.sub(f'"cwd":"/home/dev/project-{project}"', _STAMP.sub(stamp, line))


def replicate(
    dest: Path, sessions: int = 240, seed: int = 0, projects: int = 12, long_pause: float = 0.25
) -> Path:
    """Write ``sessions`` transcript files under ``dest/<project>/`` and return ``dest``."""
    rng = np.random.default_rng(seed)
    bases = [f.read_text().splitlines() for f in sorted(FIXTURES.glob("*.jsonl"))]
    weight = 1 / np.arange(1, projects + 1) ** 1.3
    for k in range(sessions):
        lines = bases[k % len(bases)]
        session = next(m.group(1) for line in lines if (m := _SESSION.search(line)))
        project = int(rng.choice(projects, p=weight / weight.sum()))
        target = max(4, round(len(lines) * rng.lognormal(-1.2, 1.3)))
        start = datetime(2026, 3, 1) + timedelta(
            days=int(rng.integers(0, 150)), hours=float(rng.normal(0, 4))
        )
        out, shift, rep = [], None, 0
        while len(out) < target:
            key = f"{seed}/{k}/{rep}"
            stamps = [datetime.fromisoformat(m.group(1)) for line in lines for m in _STAMP.finditer(line)]
            if shift is None:
                shift = start - min(stamps)
            for line in lines[: target - len(out)]:
                out.append(_rewrite(line, session, f"{seed}/{k}", key, shift, project))
            pause = rng.uniform(5.5, 30) * 3600 if rng.random() < long_pause else rng.uniform(60, 3600)
            shift += max(stamps) - min(stamps) + timedelta(seconds=pause)
            rep += 1
        folder = dest / f"-home-dev-project-{project}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{_fresh(f'{seed}/{k}', session)}.jsonl").write_text("\n".join(out) + "\n")
    return dest

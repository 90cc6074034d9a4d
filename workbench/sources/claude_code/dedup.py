"""ccusage's dedup of streamed copies: what each message keeps for it, and the copies that count."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.windows import TOKEN_COLUMNS

#: What dedup and the windows keep of each message (a few dozen bytes).
PER_MESSAGE = {
    "session": np.int64, "stamp": np.int64, "usage": bool, "total": np.int64,
    "keyed": bool, "key": np.int64, "mid": np.int64, "side": bool,
}  # fmt: skip


def per_message(t: pa.Table) -> dict[str, np.ndarray]:
    """``PER_MESSAGE`` of each of a task's message rows (copies, not views of ``t``)."""
    a, b, c, d = (t.column(n).cast(pa.int64()) for n in TOKEN_COLUMNS)
    total = pc.add(pc.add(a, b), pc.add(c, d))  # null where there is no usage
    mids, rids = t.column("message_id").to_pylist(), t.column("request_id").to_pylist()
    return {
        "session": np.array(t.column("session_id")),
        "stamp": np.array(t.column("timestamp").cast(pa.int64())),
        "usage": pc.is_valid(t.column("input_tokens")).to_numpy(zero_copy_only=False),
        "total": total.fill_null(0).to_numpy(),
        "keyed": np.array([m is not None and r is not None for m, r in zip(mids, rids, strict=True)], bool),
        "key": np.array([hash((m, r)) for m, r in zip(mids, rids, strict=True)], np.int64),
        "mid": np.array([hash(m) for m in mids], np.int64),
        "side": t.column("is_sidechain").to_numpy(zero_copy_only=False),
    }


def winners(
    usage: np.ndarray,
    keyed: np.ndarray,
    key: np.ndarray,
    mid: np.ndarray,
    total: np.ndarray,
    side: np.ndarray,
) -> np.ndarray:
    """ccusage's dedup of streamed copies: the rows (sorted) whose tokens count.

    Copies sharing (message.id, requestId) collapse to the one with the largest token total
    (first in file order on a tie). Then, among survivors sharing a message.id with
    different requestIds, sidechain copies are duplicates: a non-sidechain copy wins,
    else the largest sidechain copy. Rows without both ids always count. Keys are 64-bit
    hashes of the strings (Python's, within this process).
    """
    row = np.flatnonzero(usage)
    keyed, key, mid, total, side = keyed[row], key[row], mid[row], total[row], side[row]
    loose = row[~keyed]
    rows, key, mid, total, side = row[keyed], key[keyed], mid[keyed], total[keyed], side[keyed]
    # per key: largest total, then first row
    order = np.lexsort((rows, -total, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]] if len(order) else np.zeros(0, bool)
    pick = order[first]
    rows, mid, total, side = rows[pick], mid[pick], total[pick], side[pick]
    # per message.id: the non-sidechain copies, else the best sidechain copy
    order = np.lexsort((rows, -total, mid))
    m = mid[order]
    new = np.r_[True, m[1:] != m[:-1]] if len(order) else np.zeros(0, bool)
    group = np.cumsum(new) - 1
    has_main = np.logical_or.reduceat(~side[order], np.flatnonzero(new)) if len(order) else new
    keep = np.where(has_main[group], ~side[order], new)
    return np.sort(np.concatenate([rows[order][keep], loose]))

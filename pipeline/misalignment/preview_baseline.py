"""The export as it stands, for every preview: the kept samples (the export stage's KEPT_FOR_EXPORT),
the rules failing each sample now, and the next export's domain mix and difficulty. It does not depend on the rule being
previewed, so it is computed once per store state and kept (`preview_kept`, `preview_failing`, a `meta` row) under a
fingerprint of everything it reads; a preview of another rule, or the same one again, reads it
back. At 10^6 samples x 10 rules building it is most of a SQL rule's preview (about 6 s: a semi
join over 10^7 verdicts and one rebalance); reading it back is a fraction of a second.

    now = baseline(store, config.rebalance)   # {"kept", "selected_by_domain", "mean_difficulty"}
    # ... preview_kept: the kept samples; preview_failing: (sample_id, rule) failing now

The fingerprint: row counts of the append-only tables (samples, verdicts, judge skips: rows are
only ever added) and an order-free hash of every row of the tables that are overwritten by key
(questions' domains, question verdicts, difficulty, rule configs and states), plus the rebalance
settings. Anything that can change which samples are kept, or which are chosen, changes it.
"""

from __future__ import annotations

import json

from pipeline.hashing import stable_hash
from pipeline.stages.export import KEPT_FOR_EXPORT
from pipeline.store import Store, failing_now_sql, transaction
from schemas.config import RebalanceConfig

_META_KEY = "preview_baseline"
_VERSION = 2  # of what the baseline holds: a stored one of another version is rebuilt
_FINGERPRINT = """
SELECT [(SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), (SELECT count(*) FROM judge_skips),
        (SELECT count(*) FROM questions), (SELECT count(*) FROM question_verdicts),
        (SELECT count(*) FROM question_difficulty), (SELECT count(*) FROM rule_configs),
        (SELECT count(*) FROM rule_states)]::VARCHAR
    || [(SELECT bit_xor(hash(question_id, domain)) FROM questions),
        (SELECT bit_xor(hash(question_id, rule, rule_version, passed, created_at)) FROM question_verdicts),
        (SELECT bit_xor(hash(question_id, method, version, score, created_at)) FROM question_difficulty),
        (SELECT bit_xor(hash(rule, rule_version, config_hash)) FROM rule_configs),
        (SELECT bit_xor(hash(rule, enabled)) FROM rule_states)]::VARCHAR
"""


# (sample, rule) for every rule that drops a sample now: sample_status's failed_rules, unnested.
_FAILING = f"""
SELECT sample_id, rule FROM ({failing_now_sql()})
UNION ALL
SELECT s.sample_id, q.rule FROM samples s JOIN latest_question_verdicts q USING (question_id) WHERE NOT q.passed
UNION ALL
SELECT DISTINCT sample_id, rule || ' (pending)' FROM judge_pending
"""


def fingerprint(store: Store, rebalance: RebalanceConfig) -> str:
    return stable_hash({"store": store.scalar(_FINGERPRINT), "rebalance": rebalance.model_dump(mode="json"),
                        "version": _VERSION})


def baseline(store: Store, rebalance: RebalanceConfig) -> dict:
    """Make sure `preview_kept` holds the kept samples of the store as it is, and return the
    next export's figures from them (stored with the fingerprint; recomputed when it changed)."""
    key = fingerprint(store, rebalance)
    stored = store.scalar("SELECT value FROM meta WHERE key = ?", [_META_KEY])
    if stored is not None and (cached := json.loads(stored))["fingerprint"] == key:
        return cached["now"]
    store.con.execute(KEPT_FOR_EXPORT)  # -> temp _kept
    now = selection_figures(store, "_kept", rebalance)
    try:
        with transaction(store.con) as con:
            con.execute("DELETE FROM preview_kept")
            con.execute("INSERT INTO preview_kept SELECT * FROM _kept")
            con.execute("DELETE FROM preview_failing")
            con.execute(f"INSERT INTO preview_failing {_FAILING}")
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [_META_KEY, json.dumps({"fingerprint": key, "now": now})])
    finally:
        store.con.execute("DROP TABLE IF EXISTS _kept")
    return now


def selection_figures(store: Store, kept: str, rebalance: RebalanceConfig) -> dict:
    """The rebalance of the samples in `kept`: how many, chosen per domain, their mean difficulty."""
    from pipeline.export.rebalance import rebalance_store

    rebalance_store(store, kept, rebalance)
    try:
        return {"kept": store.scalar(f"SELECT count(*) FROM {kept}"),
                "selected_by_domain": dict(store.frame(
                    "SELECT domain, count(*) FROM _chosen GROUP BY domain ORDER BY domain").rows()),
                "mean_difficulty": store.scalar("SELECT round(avg(difficulty), 4) FROM _chosen")}
    finally:
        store.con.execute("DROP TABLE IF EXISTS _chosen")

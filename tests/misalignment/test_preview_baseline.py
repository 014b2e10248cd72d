"""The preview's baseline (the kept samples and the next export as they stand) is computed once per
store state and read back after: every change that can move a sample in or out, or change the
selection, makes it recomputed; otherwise it is reused. Checked against the plain computation
(KEPT_FOR_EXPORT + the rebalance, sample_status's failed rules) on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.config_loading import load_run_config
from pipeline.misalignment.enable import disable, enable
from pipeline.misalignment.loop_rules import resolve
from pipeline.misalignment.preview_baseline import baseline, selection_figures
from pipeline.stages.export import KEPT_FOR_EXPORT
from pipeline.store import Store, now
from pipeline.verdicts import verdict_frame


def _plain(store: Store, rebalance) -> dict:
    store.con.execute(KEPT_FOR_EXPORT)
    try:
        return selection_figures(store, "_kept", rebalance)
    finally:
        store.con.execute("DROP TABLE _kept")


def _check(store: Store, rebalance) -> dict:
    cached = baseline(store, rebalance)
    assert cached == _plain(store, rebalance)
    assert store.scalar("SELECT count(*) FROM preview_kept") == cached["kept"]
    failing = store.frame("""SELECT sample_id, list(DISTINCT rule ORDER BY rule) AS r FROM preview_failing
                             GROUP BY ALL ORDER BY sample_id""")
    status = store.frame("""SELECT sample_id, list_sort(list_distinct(failed_rules)) AS r FROM sample_status
                            WHERE len(failed_rules) > 0 ORDER BY sample_id""")
    assert failing.to_dicts() == status.to_dicts() and failing.height > 0
    return cached


def _kept_ids(store: Store, n: int) -> list[str]:
    return store.frame(f"SELECT sample_id FROM kept_samples ORDER BY sample_id LIMIT {n}")["sample_id"].to_list()


def test_the_baseline_follows_every_change_that_moves_the_export(db: Path, tmp_path: Path):
    config = load_run_config(None)
    with Store(db) as store:
        first = _check(store, config.rebalance)
        # Reused while nothing changed: a row taken out of the cache by hand stays out.
        store.con.execute("DELETE FROM preview_kept WHERE sample_id = ?", [_kept_ids(store, 1)[0]])
        assert baseline(store, config.rebalance) == first
        assert store.scalar("SELECT count(*) FROM preview_kept") == first["kept"] - 1

        # A new failing verdict drops a kept sample.
        victim = _kept_ids(store, 1)
        store.insert("verdicts", verdict_frame(victim, pl.DataFrame({"passed": [False], "score": [0.0], "reason": ["x"]}),
                                               stage="filter", rule="by_hand", version=1, run_id="t", config_hash=""))
        after_verdict = _check(store, config.rebalance)
        assert after_verdict["kept"] == first["kept"] - 1

        # A question verdict written, then overwritten by key (screening again): out, then back in.
        qid = store.scalar("SELECT question_id FROM kept_samples ORDER BY sample_id LIMIT 1")
        screen = "INSERT OR REPLACE INTO question_verdicts VALUES (?, 'decontam', 'by_hand', 1, ?, 0, 'x', NULL, 't', ?)"
        store.con.execute(screen, [qid, False, now()])
        assert _check(store, config.rebalance)["kept"] < after_verdict["kept"]
        store.con.execute(screen, [qid, True, now()])
        assert _check(store, config.rebalance) == after_verdict

        # Other rebalance settings: another selection from the same kept samples.
        smaller = config.rebalance.model_copy(update={"max_samples": 5})
        assert _check(store, smaller)["selected_by_domain"] != after_verdict["selected_by_domain"]

    # A rule enabled, then disabled: each changes what counts.
    rule_path = tmp_path / "few.yaml"
    rule_path.write_text("name: few\nversion: 1\ndescription: t\nwhere: " + json.dumps("sample_id < 's010'") + "\n")
    rule = resolve(str(rule_path), config)
    enable(db, rule, "enable-1")
    with Store(db) as store:
        enabled = _check(store, config.rebalance)
    disable(db, rule)
    with Store(db) as store:
        assert _check(store, config.rebalance)["kept"] > enabled["kept"]

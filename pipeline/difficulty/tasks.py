"""pass@k difficulty of agentic tasks: per task, the share of its verified rollouts that were
correct (trajectories.correct), over every rollout stored (any run, any model), as
question_difficulty's pass_rate is over a question's samples.

    changed = score_task_difficulty(store, run_id)      # rows of task_difficulty written

score = 1 - pass_rate (0 easy .. 1 hard), pass_at_k = at least one of the k verified rollouts was
correct; a task none of whose rollouts could be verified gets no row. A trajectory's difficulty
is its task's (the view trajectory_difficulty). Recomputed every run; only rows whose value
changed are written, so a rerun with nothing new writes nothing.
"""

from __future__ import annotations

import polars as pl

from pipeline.store import Store, now
from schemas.rows import TASK_DIFFICULTY

# The view trajectory_difficulty (pipeline/store.py) reads exactly this method and version.
PASS_AT_K, PASS_AT_K_VERSION = "pass_at_k", 1

_PASS_RATES = """
SELECT task_id, min(environment) AS environment, count(*) AS n_rollouts, count(correct) AS k,
       count(*) FILTER (WHERE correct) AS n_correct
FROM trajectories GROUP BY task_id HAVING count(correct) > 0 ORDER BY task_id
"""


def task_pass_rates(store: Store) -> pl.DataFrame:
    """task_id, environment, score, pass_rate, pass_at_k, k, n_rollouts, detail."""
    frame = store.frame(_PASS_RATES)
    return frame.with_columns(pass_rate=pl.col("n_correct") / pl.col("k")).with_columns(
        score=1 - pl.col("pass_rate"), pass_at_k=pl.col("n_correct") > 0,
        detail=pl.format("{}/{} verified rollouts correct ({} stored)", "n_correct", "k", "n_rollouts"),
    ).drop("n_correct")


def score_task_difficulty(store: Store, run_id: str) -> int:
    """Write the pass@k rows that are new or changed; returns how many."""
    fresh = task_pass_rates(store)
    old = store.frame("SELECT task_id, score AS old_score, detail AS old_detail FROM task_difficulty "
                      "WHERE method = ? AND version = ?", [PASS_AT_K, PASS_AT_K_VERSION])
    changed = fresh.join(old, on="task_id", how="left").filter(
        pl.col("old_score").is_null() | ((pl.col("score") - pl.col("old_score")).abs() > 1e-12)
        | (pl.col("detail") != pl.col("old_detail")))
    if changed.is_empty():
        return 0
    rows = changed.with_columns(method=pl.lit(PASS_AT_K), version=pl.lit(PASS_AT_K_VERSION), run_id=pl.lit(run_id),
                                created_at=pl.lit(now())).cast(
        {k: v for k, v in TASK_DIFFICULTY.items() if k != "created_at"}).select(list(TASK_DIFFICULTY))
    store.replace("task_difficulty", rows)
    return rows.height

"""Difficulty signals against real difficulty labels: Spearman rho (and p) of each signal and of
the combined score with the MATH level (1-5) or the AIME problem number (1-15).

    .venv/bin/python bench/difficulty_validation.py [--pool math|aime] [--per-group 20] [--k 4]
        [--reasoning-tokens 256] [--answer-tokens 96] [--llm | --llm-only] [--db PATH]
    .venv/bin/python bench/difficulty_validation.py --pool qwen-labels

math / aime: questions from the shipped pool (data/seeds), `--per-group` per MATH level or per
AIME problem number (seeded), run through the real stages without Prefect (ingest, synthesize k
samples each on the configured engine: configs/default.yaml, the 1.5B default model; verify; difficulty).
`--llm` adds the LLM rating (judges/rules/difficulty_rating.yaml) to the signals; `--llm-only`
rates the questions without synthesizing anything (the sample signals come from what the --db
file already holds, if anything). `--db` keeps the DuckDB file, so a
second call (e.g. --llm-only after a synthesis run) reuses what is there.
qwen-labels: no model call. The 100 MATH-500 problems x 8 Qwen2.5-Math-7B CoT responses with
their grader's verdicts (data/labels/math_cot_responses_labelled.jsonl) are stored as samples with
answer_match verdicts, to see the sample-based signals on competent reasoning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

POOLS = {"math": ROOT / "data" / "seeds" / "math_train.json", "aime": ROOT / "data" / "seeds" / "aime_1983_2023.json"}
QWEN = ROOT / "data" / "labels" / "math_cot_responses_labelled.jsonl"


class Ticker:
    """Progress for the stages: one line per stage with its count and time."""

    def start(self, label, total):
        self.label, self.total, self.n, self.t = label, total, 0, time.perf_counter()

    def advance(self, n=1):
        self.n += n

    def add_total(self, n):
        self.total += n

    def done(self):
        print(f"  {self.label:<40} {self.n:>5} {time.perf_counter() - self.t:7.1f} s", flush=True)


def labels_for(store, pool: str) -> dict[str, float]:
    """question_id -> label: MATH level 1-5, AIME problem number 1-15."""
    if pool == "math":
        rows = store.frame("SELECT question_id, round(level * 5) AS label FROM questions WHERE source = 'math'")
        return {q: lv for q, lv in rows.rows() if lv and lv >= 1}
    records = json.loads(POOLS["aime"].read_text())
    number = {" ".join(r["problem"].split()): r["problem_number"] for r in records}
    rows = store.frame("SELECT question_id, text FROM questions WHERE source = 'aime'")
    out = {q: number.get(" ".join(t.split())) for q, t in rows.rows()}
    missing = sum(v is None for v in out.values())
    if missing:
        print(f"  ({missing} AIME questions not matched to a problem number; left out)")
    return {q: float(v) for q, v in out.items() if v and v >= 1}


def stratified(labels: dict[str, float], per_group: int, seed: int) -> list[str]:
    from pipeline.hashing import stable_hash

    groups: dict[float, list[str]] = {}
    for q, lv in labels.items():
        groups.setdefault(lv, []).append(q)
    return [q for lv in sorted(groups) for q in sorted(groups[lv], key=lambda q: stable_hash(q, seed))[:per_group]]


def qwen_store(store) -> dict[str, float]:
    """The labelled Qwen2.5-Math responses as questions, samples and answer_match verdicts."""
    import polars as pl

    from pipeline.hashing import stable_hash
    from pipeline.stages.synthesize import SAMPLE_SCHEMA
    from pipeline.verdicts import verdict_frame
    from pipeline.store import now

    records = [json.loads(line) for line in QWEN.read_text().splitlines() if line.strip()]
    questions, samples, sample_ids, passed, labels = [], [], [], [], {}
    for i, r in enumerate(records):
        qid = stable_hash("qwen-labels", r["question"])
        level = int(r["level"].split()[-1])
        labels[qid] = float(level)
        questions.append({"question_id": qid, "source": "qwen25math-labels", "domain": "math", "subdomain": None,
                          "text": r["question"], "reference_answer": r["answer"], "answer_type": "math",
                          "tests": None, "level": level / 5, "pool_path": str(QWEN), "pool_line": i + 1,
                          "first_run_id": "bench"})
        for j, (text, ok) in enumerate(zip(r["code"], r["score"])):
            sid = stable_hash(qid, j)
            samples.append({"sample_id": sid, "question_id": qid, "run_id": "bench", "sample_index": j,
                            "gen_config_hash": "qwen", "model": "Qwen2.5-Math-7B-Instruct", "requested_format": "boxed",
                            "prompt_hash": "qwen", "messages": "[]", "raw_text": text, "reasoning": text,
                            "answer": text[-200:], "think_closed_by": None, "reasoning_finish": None,
                            "finish_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0,
                            "sampling_params": "{}", "created_at": now()})
            sample_ids.append(sid)
            passed.append(bool(ok))
    store.insert("questions", pl.DataFrame(questions, schema_overrides={"tests": pl.List(pl.String),
                                                                         "subdomain": pl.String}))
    store.insert("samples", pl.DataFrame(samples, schema={k: SAMPLE_SCHEMA[k] for k in samples[0]}))
    results = pl.DataFrame({"passed": passed, "score": [float(p) for p in passed], "reason": [None] * len(passed)},
                           schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String})
    store.insert("verdicts", verdict_frame(sample_ids, results, stage="verify", rule="answer_match", version=1,
                                           run_id="bench"))
    return labels


def report(store, labels: dict[str, float], label_name: str, qids: list[str]) -> None:
    import polars as pl
    from scipy.stats import spearmanr

    frame = store.frame("""
        SELECT question_id, method, version, score FROM question_difficulty
        WHERE question_id IN (SELECT question_id FROM probe)
          AND (method, version) IN (('pass_rate', 1), ('reasoning_length', 2), ('llm_rating', 1), ('irt', 1),
                                    ('combined', 1))
    """, probe=pl.DataFrame({"question_id": qids}))
    label = pl.DataFrame({"question_id": list(labels), "label": list(labels.values())})
    frame = frame.join(label, on="question_id")
    print(f"\nSpearman rho against {label_name} ({len(qids)} questions)")
    print(f"  {'signal':<22}{'n':>5}{'distinct':>10}{'rho':>9}{'p':>11}")
    for method in ("pass_rate", "reasoning_length", "llm_rating", "irt", "combined"):
        part = frame.filter(pl.col("method") == method)
        if part.is_empty():
            continue
        distinct = part["score"].n_unique()
        if distinct < 2:
            print(f"  {method:<22}{part.height:>5}{distinct:>10}{'constant':>9}{'-':>11}")
            continue
        rho, p = spearmanr(part["score"], part["label"])
        print(f"  {method:<22}{part.height:>5}{distinct:>10}{rho:>9.3f}{p:>11.2g}")
    print(f"\nper {label_name}: mean of each signal's score, and what the samples were like")
    per = store.frame("""
        WITH v AS (SELECT sample_id, bool_and(passed) AS correct FROM latest_verdicts
                   WHERE rule IN ('answer_match', 'code_tests') GROUP BY sample_id)
        SELECT s.question_id, avg(v.correct::INT) AS correct_share,
               median(length(coalesce(s.reasoning, ''))) AS median_chars,
               avg((s.reasoning_finish = 'length')::INT) AS cut_share
        FROM samples s LEFT JOIN v USING (sample_id)
        WHERE s.question_id IN (SELECT question_id FROM probe) GROUP BY s.question_id
    """, probe=pl.DataFrame({"question_id": qids})).join(label, on="question_id")
    wide = frame.pivot(on="method", index=["question_id", "label"], values="score")
    table = wide.join(per.drop("label"), on="question_id", how="left").group_by("label").agg(
        pl.len().alias("n"), *[pl.col(c).mean().round(3) for c in wide.columns if c not in ("question_id", "label")],
        *[pl.col(c).mean().round(3) for c in ("correct_share", "median_chars", "cut_share") if c in per.columns],
    ).sort("label")
    with pl.Config(tbl_rows=30, tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(table)
    ratings = store.frame("""SELECT round(score * 9) + 1 AS rating, count(*) AS n FROM question_difficulty
                             WHERE method = 'llm_rating' AND question_id IN (SELECT question_id FROM probe)
                             GROUP BY 1 ORDER BY 1""", probe=pl.DataFrame({"question_id": qids}))
    if ratings.height:
        print("LLM ratings (1-10): " + ", ".join(f"{int(r)}: {n}" for r, n in ratings.rows()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", choices=["math", "aime", "qwen-labels"], default="math")
    parser.add_argument("--per-group", type=int, default=20, help="questions per MATH level / AIME problem number")
    parser.add_argument("--k", type=int, default=4, help="samples per question")
    parser.add_argument("--reasoning-tokens", type=int, default=256)
    parser.add_argument("--answer-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm", action="store_true", help="also rate each question with the LLM rule")
    parser.add_argument("--llm-only", action="store_true", help="only the LLM rating (no synthesis)")
    parser.add_argument("--db", type=Path, default=None, help="keep the DuckDB file here (default: a temp file)")
    args = parser.parse_args()

    from pipeline.config_loading import load_run_config
    from pipeline.engines.factory import make_engine
    from pipeline.stages.difficulty import score_difficulty
    from pipeline.stages.ingest import ingest
    from pipeline.stages.synthesize import synthesize
    from pipeline.stage import RunState, StageContext
    from pipeline.stages import verify as verify_stage
    from schemas.config import CurateConfig
    from pipeline.store import Store
    from schemas.difficulty import DifficultyConfig

    db = args.db or Path(tempfile.mkdtemp()) / "difficulty.duckdb"
    t0 = time.perf_counter()
    with Store(db) as store:
        run_id = store.start_run({"bench": "difficulty_validation", **{k: str(v) for k, v in vars(args).items()}},
                                 "bench")
        if args.pool == "qwen-labels":
            labels = qwen_store(store)
            qids = list(labels)
            print(f"{len(qids)} MATH-500 problems x 8 Qwen2.5-Math responses (grader verdicts), no model call")
            diff = score_difficulty(store, run_id, qids)
            report(store, labels, "MATH level", qids)
            store.finish_run(run_id, "finished", {"difficulty": vars(diff)})
            return
        config = load_run_config()
        source = args.pool
        pools = [p for p in config.pools if p.source == source]
        syn = config.synthesis.model_copy(update={"n": args.k, "reasoning_max_tokens": args.reasoning_tokens,
                                                  "answer_max_tokens": args.answer_tokens})
        config = config.model_copy(update={"pools": pools, "synthesis": syn})
        ingest(store, config, run_id)
        labels = labels_for(store, source)
        qids = stratified(labels, args.per_group, args.seed)
        label_name = "MATH level" if source == "math" else "AIME problem number"
        print(f"{len(qids)} {source} questions ({args.per_group} per {label_name}), k={args.k}, "
              f"budget {args.reasoning_tokens}+{args.answer_tokens} tokens, engine {config.engine.model}, db {db}")
        engine = make_engine(config.engine, announce=print)
        signals = ["pass_rate", "reasoning_length", "irt"]
        if not args.llm_only:
            t = time.perf_counter()
            synth = synthesize(store, engine, syn, run_id, qids, Ticker())
            print(f"  synthesized {synth.generated} samples ({synth.already_done} already there, "
                  f"{synth.errors} errors) in {time.perf_counter() - t:.0f} s")
            verify = verify_stage.run(StageContext(store, RunState(run_id, CurateConfig()), Ticker())).counts
            print(f"  verified {verify['checked']}, correct {verify['correct']}")
        if args.llm or args.llm_only:
            signals.append("llm_rating")
        t = time.perf_counter()
        from judges.loader import load_rule

        rating = load_rule("difficulty_rating") if "llm_rating" in signals else None
        diff = score_difficulty(store, run_id, qids, config=DifficultyConfig(signals=signals), engine=engine,
                                llm_rule=rating, progress=Ticker())
        print(f"  difficulty {vars(diff)} in {time.perf_counter() - t:.0f} s")
        report(store, labels, label_name, qids)
        store.finish_run(run_id, "finished", {"difficulty": vars(diff)})
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

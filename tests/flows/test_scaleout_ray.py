"""The Ray executor (flows/ray_executor.py) of the one verdict loop (pipeline/verdict_loop.py):
on a local Ray cluster of 2 CPUs started here, the filter and verify stages store exactly the
verdicts they store inline on a copy of the same database, a killed run's Parquet parts are
ingested once by the next run, and the domain stage's embeddings computed on Ray classify as
the local ones.

The slow tests share one Ray cluster and one Prefect test server (about a minute to start
here); the parts tests at the end need neither.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.scale import synthetic_batch
from pipeline.benchmarks import index_for
from pipeline.rules import pass_rules
from pipeline.scaleout.parts import ingest_parts, part_path, parts_root, pending_parts, write_part
from pipeline.stage import RunState, StageContext
from pipeline.stages import filter as filter_stage
from pipeline.stages import verify as verify_stage
from pipeline.stages.synthesize import SAMPLE_SCHEMA
from pipeline.verdicts import verdict_frame
from pipeline.store import Store
from pipeline.verdict_loop import INLINE, check_chunk, chunk_jobs, chunk_sizes, due_frame
from schemas.config import CurateConfig
from tests.conftest import DATA
from tests.filters.test_verify_stage import _question, _sample

N_SYNTHETIC = 3000  # synthetic samples (1 in 20 with a defect a rule catches); all of them get answer_match
CHUNK_ROWS = 700  # several chunks per pass, more than the 4 in flight
CONFIG = CurateConfig(scaleout={"runner": "ray", "num_workers": 2, "chunk_rows": CHUNK_ROWS})
COMPARED = "sample_id, stage, rule, rule_version, config_hash, passed, score, reason"
TRAIN_QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                  "How many clips did Natalia sell altogether in April and May?")


def _verification_cases() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Questions with reference answers and code tests, samples right and wrong (deterministic
    outcomes only: the verdict reasons are compared), and an answer quoting a GSM8K test item."""
    mbpp = json.loads((DATA / "seeds" / "mbpp_sanitized.json").read_text())
    janet = json.loads((DATA / "benchmarks" / "gsm8k_test.jsonl").open().readline())["question"]
    questions = [
        _question("m1", "What is 6 * 7?", answer="42", answer_type="math"),
        _question("n1", "Pressure in atm?", answer="50.7", answer_type="numeric", domain="science"),
        _question("c1", mbpp[0]["prompt"], answer_type="code", tests=mbpp[0]["test_list"], domain="code"),
        _question("c2", mbpp[1]["prompt"], answer_type="code", tests=mbpp[1]["test_list"], domain="code"),
        _question("t1", TRAIN_QUESTION, answer="72", answer_type="math"),
    ]
    contaminated = _sample("t-quote", "t1", "48 + 24 = 72, so \\boxed{72}.")
    contaminated.update(reasoning=f"I remember this one: {janet} She sells 9 eggs.",
                        raw_text=f"<think>\nI remember this one: {janet}\n</think>\n\n48 + 24 = 72, so \\boxed{{72}}.")
    samples = [
        _sample("m-right", "m1", "So the answer is \\boxed{42}."), _sample("m-wrong", "m1", "The answer is 41."),
        _sample("n-close", "n1", "The pressure is about 50.9 atm."),
        _sample("c1-right", "c1", f"```python\n{mbpp[0]['code']}\n```"),
        _sample("c1-none", "c1", "I would loop over both lists."),
        _sample("c2-right", "c2", f"```python\n{mbpp[1]['code']}\n```"),
        _sample("c2-wrong", "c2", "```python\ndef is_not_prime(n):\n    return False\n```"),
        _sample("t-own", "t1", "In May she sold 48 / 2 = 24, so 48 + 24 = \\boxed{72}."), contaminated,
    ]
    return (pl.DataFrame(questions, schema_overrides={"tests": pl.List(pl.String)}),
            pl.DataFrame(samples, schema=SAMPLE_SCHEMA))


@pytest.fixture(scope="module")
def base_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scaleout") / "base.duckdb"
    questions, samples = synthetic_batch(0, N_SYNTHETIC, seed=1)
    more_questions, more_samples = _verification_cases()
    with Store(path) as store:
        store.insert("questions", pl.concat([questions, more_questions], how="diagonal_relaxed"))
        store.insert("samples", pl.concat([samples, more_samples]))
    return path


@pytest.fixture(scope="module")
def index():
    return index_for(CONFIG)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for this module; the flows' task runners join it."""
    import ray

    from flows.ray_executor import ray_cluster

    with ray_cluster(CONFIG.scaleout):
        assert ray.cluster_resources()["CPU"] == 2
        yield


def _copy(base: Path, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.duckdb"
    shutil.copy(base, path)
    return path


def _stages(db: Path, index, executor, run_id: str = "run") -> tuple[dict, dict]:
    """The filter and verify stages' counts, their chunks checked by `executor`."""
    run = RunState(run_id, CONFIG, executor=executor)
    run.built["benchmark_index"] = index  # built once for the module
    with Store(db) as store:
        ctx = StageContext(store, run)
        return filter_stage.run(ctx).counts, verify_stage.run(ctx).counts


def _ray():
    from flows.ray_executor import RayExecutor

    return RayExecutor(CONFIG.scaleout)


def _rule_configs(db: Path) -> pl.DataFrame:
    with Store(db, read_only=True) as store:
        return store.frame("SELECT rule, stage, rule_version, config_hash, params FROM rule_configs ORDER BY rule")


def _verdicts(db: Path, columns: str = COMPARED) -> pl.DataFrame:
    with Store(db, read_only=True) as store:
        return store.frame(f"SELECT {columns} FROM verdicts ORDER BY sample_id, rule, rule_version, config_hash")


@pytest.fixture(scope="module")
def reference(base_db, index, tmp_path_factory):
    db = _copy(base_db, tmp_path_factory.mktemp("reference"), "local")
    counts, report = _stages(db, index, INLINE)
    return counts, report, _verdicts(db), _rule_configs(db)


@pytest.mark.slow
def test_ray_path_stores_the_verdicts_of_the_single_process_path(cluster, prefect_server, base_db, index,
                                                                  reference, tmp_path):
    local_counts, local_report, local, local_configs = reference
    db = _copy(base_db, tmp_path, "ray")
    before = _ray_flow_runs()
    counts, report = _stages(db, index, _ray())
    assert _ray_flow_runs() - before == {"filter-on-ray": 1, "decontam-on-ray": 1, "verify-on-ray": 1}

    assert counts == local_counts  # {rule: {checked, failed}}
    assert report == local_report
    assert _verdicts(db).equals(local)
    assert _rule_configs(db).equals(local_configs) and local_configs.height == 13  # each rule's hash recorded
    # Not a trivially equal pair: every kind of verdict is there, with failures.
    n_samples = N_SYNTHETIC + 9
    failed = dict(local.filter(~pl.col("passed")).group_by("rule").len().iter_rows())
    assert local.height == n_samples * 11 + (N_SYNTHETIC + 5) + 4  # 10 rules + decontam, answer_match, code_tests
    assert failed["structure"] >= N_SYNTHETIC // 20 and failed["decontam_answer"] == 1
    assert (local_report["code_checked"], local_report["code_passed"]) == (4, 2)
    assert not parts_root(db).exists()  # every part ingested and removed

    again, verified = _stages(db, index, _ray(), "again")
    assert all(c["checked"] == 0 for c in again.values()) and verified["checked"] == 0
    assert _verdicts(db).equals(local)


@pytest.mark.slow
def test_a_killed_runs_parts_are_ingested_once_by_the_resume(cluster, prefect_server, base_db, index, reference,
                                                             tmp_path):
    db = _copy(base_db, tmp_path, "killed")
    rules = pass_rules(CONFIG, "filter")
    # The killed run: workers finished chunks 0-2 and wrote their parts; the run's process
    # ingested chunk 0 and died before deleting its file; a fourth part was half-written.
    with Store(db) as store:
        jobs = chunk_jobs(store, due_frame(store, rules), "filter", "killed", chunk_rows=CHUNK_ROWS, workers=2,
                          part_for=lambda i: part_path(db, "killed", "filter", i))
        done = [check_chunk(next(jobs), rules) for _ in range(3)]
        first = Path(done[0].part)
        kept = first.read_bytes()
        ingest_parts(store, [first])
        first.write_bytes(kept)
    part_path(db, "killed", "filter", 3).with_suffix(".parquet.tmp").write_bytes(b"PAR1 half a part")
    assert len(pending_parts(db, "filter")) == 3

    counts, _ = _stages(db, index, _ray(), "resumed")

    local_counts, _, local, _ = reference
    mine = _verdicts(db, COMPARED + ", run_id")
    assert mine.drop("run_id").filter(pl.col("stage") != "verify").equals(
        local.filter(pl.col("stage") != "verify"))
    by_run = dict(mine.group_by("run_id").len().iter_rows())
    assert by_run["killed"] == sum(r.rows for r in done)  # ingested, not computed again
    # Counts are the verdicts this call stored: chunk 0's were in the database before it.
    assert {r: c["checked"] for r, c in counts.items()} == \
        {r: c["checked"] - (done[0].samples if r != "decontam_answer" else 0) for r, c in local_counts.items()}
    assert not parts_root(db).exists()  # parts ingested and removed, the half part swept


@pytest.mark.slow
def test_the_filter_and_verify_flows_run_on_ray_when_configured(cluster, prefect_server, base_db, reference,
                                                                 tmp_path):
    """The wiring in flows/curate_flow.py: scaleout.runner: ray in the run config sends the stage
    flows' work to Ray; the stored verdicts and the run's counts equal the single-process path."""
    from flows.curate_flow import filter_flow, verify_flow
    from flows.params import StageParams

    local_counts, local_report, local, _ = reference
    db = _copy(base_db, tmp_path, "flows")
    config = tmp_path / "ray.yaml"
    config.write_text(f"scaleout: {{runner: ray, num_workers: 2, chunk_rows: {CHUNK_ROWS}}}\n")
    params = StageParams(config_path=str(config), db=str(db))
    before = _ray_flow_runs()
    filters = filter_flow(params)["filters"]
    verify = verify_flow(params)["verify"]
    assert _ray_flow_runs() - before == {"filter-on-ray": 1, "decontam-on-ray": 1, "verify-on-ray": 1}

    assert filters == local_counts
    assert verify == local_report
    assert _verdicts(db).equals(local)
    with Store(db, read_only=True) as store:
        assert store.frame("SELECT status FROM runs")["status"].to_list() == ["finished", "finished"]


RAY_FLOWS = ["filter-on-ray", "decontam-on-ray", "verify-on-ray", "embeddings-on-ray"]


def _ray_flow_runs():
    """Flow runs of the Ray subflows so far, by name (filtered on the server: the shared test
    server holds other tests' runs too)."""
    from collections import Counter

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=RAY_FLOWS)))
        names = {r.flow_id: client.read_flow(r.flow_id).name for r in runs}
        return Counter(names[r.flow_id] for r in runs)


@pytest.mark.slow
def test_domain_embeddings_on_ray_classify_as_the_local_embedder(cluster, prefect_server, tmp_path, monkeypatch):
    """Cold embedding caches: the labelled pools and the questions are embedded by embed-chunk
    tasks on Ray in one run, by the local Embedder in the other; same vectors (to float noise),
    same domains and sub-domains stored."""
    from flows.ray_executor import RayExecutor
    from pipeline.domain_classifier.labelled import load_labelled
    from pipeline.stages.domains import classify_run_questions
    from schemas.domains import DomainConfig

    domains = DomainConfig(classifier="knn", max_per_subdomain=8)  # ~450 labelled texts: seconds, not minutes
    config = CurateConfig(domains=domains.model_dump(), scaleout=CONFIG.scaleout.model_dump())
    texts = load_labelled().sample(60, seed=3)["text"].to_list()
    questions = pl.DataFrame([_question(f"q{i}", t, domain="other") for i, t in enumerate(texts)])
    ids = questions["question_id"].to_list()
    stored = {}
    for how in ("local", "ray"):
        monkeypatch.setenv("CURATE_HOME", str(tmp_path / how))
        with Store(tmp_path / f"{how}.duckdb") as store:
            store.insert("questions", questions)
        before = _ray_flow_runs()
        if how == "local":
            with Store(tmp_path / "local.duckdb") as store:
                report = classify_run_questions(store, domains, "r", ids)
            assert _ray_flow_runs() == before
        else:
            with Store(tmp_path / "ray.duckdb") as store:
                report = classify_run_questions(store, domains, "r", ids,
                                                embedder=RayExecutor(config.scaleout).embedder())
            assert _ray_flow_runs() - before == {"embeddings-on-ray": 2}  # the labelled pools, the questions
        assert report["knn"] == 60
        with Store(tmp_path / f"{how}.duckdb", read_only=True) as store:
            stored[how] = store.frame("SELECT question_id, domain, subdomain, confidence FROM question_domains "
                                      "ORDER BY question_id")
    assert stored["ray"].select("question_id", "domain", "subdomain").equals(
        stored["local"].select("question_id", "domain", "subdomain"))
    assert (stored["ray"]["confidence"] - stored["local"]["confidence"]).abs().max() < 1e-4
    [local_cache] = (tmp_path / "local" / "domains").glob("embeddings-*.npz")
    ray_cache = tmp_path / "ray" / "domains" / local_cache.name  # same model id: the caches are interchangeable
    with np.load(local_cache) as a, np.load(ray_cache) as b:
        assert a["keys"].tolist() == b["keys"].tolist()
        assert np.abs(a["embeddings"] - b["embeddings"]).max() < 1e-4


# --- parts, without Ray ------------------------------------------------------------------------------


def _part_rows(ids: list[str], rule: str = "structure", passed: bool = True) -> pl.DataFrame:
    results = pl.DataFrame({"passed": [passed] * len(ids), "score": [1.0] * len(ids), "reason": [None] * len(ids)},
                           schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String})
    return verdict_frame(ids, results, stage="filter", rule=rule, version=1, run_id="r", config_hash="h")


def test_an_ingested_part_adds_nothing_the_second_time(tmp_path: Path):
    db = tmp_path / "p.duckdb"
    with Store(db) as store:
        a = write_part(_part_rows(["s1", "s2"]), part_path(db, "r", "filter", 0))
        # the same keys again in a second part (two killed runs' leftovers): stored once
        b = write_part(pl.concat([_part_rows(["s2", "s3"]), _part_rows(["s3"], "length", False)]),
                       part_path(db, "r", "filter", 1))
        kept = a.read_bytes()
        tallies = ingest_parts(store, [a, b])
        assert {r: (t.new, t.failed) for (r, _), t in tallies.items()} == {"structure": (3, 0), "length": (1, 1)}
        assert not a.exists() and not b.exists()
        a.write_bytes(kept)  # killed between the commit and the delete
        assert ingest_parts(store, [a]) == {}
        assert store.count("verdicts") == 4


def test_a_part_of_the_wrong_shape_is_refused_naming_the_file(tmp_path: Path):
    db = tmp_path / "p.duckdb"
    bad = part_path(db, "r", "filter", 0)
    bad.parent.mkdir(parents=True)
    _part_rows(["s1"]).with_columns(pl.col("rule_version").cast(pl.String)).write_parquet(bad)
    with Store(db) as store, pytest.raises(ValueError, match=r"part-0-00000\.parquet.*rule_version"):
        ingest_parts(store, [bad])
    with pytest.raises(ValueError, match="missing column"):
        write_part(_part_rows(["s1"]).drop("reason"), part_path(db, "r", "filter", 1))


def test_chunks_are_even_and_a_multiple_of_the_workers():
    assert chunk_sizes(50_000, 20_000, 2) == [12_500] * 4
    assert chunk_sizes(10, 20_000, 2) == [5, 5]
    assert chunk_sizes(1, 20_000, 2) == [1]
    assert chunk_sizes(0, 5, 2) == []
    assert sum(chunk_sizes(3009, 700, 2)) == 3009 and len(chunk_sizes(3009, 700, 2)) == 6

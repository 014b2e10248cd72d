"""`curate view` page times over large stores: the sample list (plain and filtered), one sample's
page, the SQL box, and the first and a later search.

    .venv/bin/python bench/viewer_speed.py                  # 10^5 and 10^6 samples
    .venv/bin/python bench/viewer_speed.py --sizes 20000    # a quick look

Each size runs in its own process on a fresh DuckDB file: N synthetic samples (bench/scale.py's
generator: 2 per question, four domains, ~1.5 KB of reasoning), ten cheap-rule verdicts per sample
(each fails 1 in 200: about 1 sample in 20 fails one), two question verdicts per question, a judge
verdict with a rationale on every fifth sample, a combined difficulty per question (and two other
signals), and one export selecting a quarter of the samples; the verdict rows are written
with SQL (the rules' own speed is bench/scale.py's subject). The viewer app (pipeline/viewer/app.py)
answers each request in this process (Starlette's test client, no network): the times are the
server's, one request at a time, each opening and closing its read-only connection as it does
when served.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULES = ["completeness", "format_compliance", "judge_bait", "language", "length", "redundancy", "repetition",
         "self_identity", "structure", "truncation"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(db: Path, n: int) -> float:
    from bench.scale import synthetic_batch
    from pipeline.store import Store

    t = time.perf_counter()
    with Store(db) as store:
        for start in range(0, n, 50_000):
            questions, samples = synthetic_batch(start, min(50_000, n - start), seed=0)
            store.insert("questions", questions)
            store.insert("samples", samples)
        rules = ", ".join(f"('{r}')" for r in RULES)
        store.con.execute(f"""
            INSERT INTO verdicts (sample_id, stage, rule, rule_version, passed, score, reason, run_id, created_at)
            SELECT s.sample_id, 'filter', r.rule, 1, hash(s.sample_id || r.rule) % 200 != 0, NULL,
                   CASE WHEN hash(s.sample_id || r.rule) % 200 = 0 THEN r.rule || ': failed on this sample' END,
                   'bench', now()
            FROM samples s, (VALUES {rules}) r(rule)""")
        store.con.execute("""
            INSERT INTO verdicts (sample_id, stage, rule, rule_version, passed, score, reason, details, run_id,
                                  created_at, prompt_tokens, completion_tokens)
            SELECT sample_id, 'judge', 'logical_completeness', 2, hash(sample_id) % 5 >= 2, 1 + hash(sample_id) % 5,
                   'The reasoning states the given numbers, multiplies and adds them, and checks the result.',
                   '{"raw": [], "attempts": 1}', 'bench', now(), 1000, 40
            FROM samples WHERE hash(sample_id) % 5 = 0""")
        store.con.execute("""
            INSERT INTO question_difficulty (question_id, method, version, score, n_samples, detail, run_id, created_at)
            SELECT question_id, m.method, 1, (hash(question_id || m.method) % 1000) / 999.0, 2, '', 'bench', now()
            FROM questions, (VALUES ('combined'), ('pass_rate'), ('reasoning_length')) m(method)""")
        store.con.execute("""
            INSERT INTO question_verdicts (question_id, stage, rule, rule_version, passed, run_id, created_at)
            SELECT question_id, r.stage, r.rule, 1, hash(question_id || r.rule) % 100 != 0, 'bench', now()
            FROM questions, (VALUES ('decontam', 'decontam_ngram'), ('dedup', 'minhash_dedup')) r(stage, rule)""")
        store.con.execute("INSERT INTO exports VALUES ('export-bench', 'bench', now(), 'out/export-bench', 'h', '{}')")
        store.con.execute("""
            INSERT INTO selections SELECT 'export-bench', s.sample_id, q.domain, NULL, q.domain || ': bench'
            FROM samples s JOIN questions q USING (question_id) WHERE hash(s.sample_id) % 4 = 1""")
        store.con.execute("INSERT INTO shards VALUES ('export-bench', 'data/train-00000-of-00001.parquet', 1, 1, 'x')")
    return time.perf_counter() - t


def run_size(n: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="curate-viewer-"))
    try:
        return timed_pages(tmp / "curate.duckdb", n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed_pages(db: Path, n: int) -> dict:
    from fastapi.testclient import TestClient

    from pipeline.viewer.app import make_app

    figures = {"samples": n, "build_s": build(db, n), "db_mb": db.stat().st_size / 2**20}
    client = TestClient(make_app(db, "t"), base_url="http://127.0.0.1")
    some = "s000000010"
    pages = {
        "list": "/?token=t",
        "list page 2": "/?page=2",
        "domain + failed rule": "/?domain=math&failed=repetition",
        "judge score <= 2": "/?judge=logical_completeness&judge_max=2",
        "difficulty >= 0.9": "/?difficulty_min=0.9",
        "export": "/?export=export-bench",
        "kept = no": "/?kept=no",
        "one sample": f"/sample/{some}",
        "search, first (builds the index)": "/?q=shop+items+weeks",
        "search, later": "/?q=constraint+positive",
        "search + domain": "/?q=constraint+positive&domain=code",
    }
    for name, url in pages.items():
        t = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[-500:])
        figures[name] = time.perf_counter() - t
    for name, sql in {"SQL box: samples by domain": "SELECT domain, count(*) FROM samples JOIN questions "
                                                      "USING (question_id) GROUP BY ALL",
                      "SQL box: sample_status by domain": "SELECT domain, kept, count(*) FROM sample_status "
                                                            "GROUP BY ALL"}.items():
        t = time.perf_counter()
        response = client.post("/sql", data={"sql": sql})
        figures[name] = time.perf_counter() - t
        if "longer than" in response.text:  # the box's time limit stopped it: say so, it is the limit at work
            figures[name + " (stopped by the 10 s limit)"] = figures.pop(name)
        else:
            assert response.status_code == 200, response.text[-500:]
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_size(args.child)))
        return
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"size {n} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:,} samples ({r.pop('db_mb'):,.0f} MB store, built in {r.pop('build_s'):.0f} s), "
              f"peak RSS {r.pop('peak_rss_mb'):,.0f} MB:")
        r.pop("samples")
        for name, seconds in r.items():
            print(f"  {name:<36} {seconds:7.2f} s", flush=True)


if __name__ == "__main__":
    main()

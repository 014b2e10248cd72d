"""The golden run: what a run wrote, in a canonical form to compare before and after a refactor.

Every verdict row's key with passed and score, every question verdict, every sample's text
digest, the newest export's selection and each shard's sha256; nothing that names a run or a
time. tests/flows/test_e2e.py compares the e2e run against tests/fixtures/golden_e2e.json; record it
anew (only when a change is meant to change behaviour, and say so in the commit) with

    CURATE_RECORD_GOLDEN=1 .venv/bin/python -m pytest -q tests/flows/test_e2e.py -k golden
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb

GOLDEN = Path(__file__).parent / "fixtures" / "golden_e2e.json"
RECORD = "CURATE_RECORD_GOLDEN"


def _rows(con, sql: str) -> list[list]:
    return [[round(v, 6) if isinstance(v, float) else v for v in row] for row in con.sql(sql).fetchall()]


def snapshot(db: Path) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        export = con.sql("SELECT export_id FROM exports ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
        return {
            "samples": [[sid, hashlib.sha256(text.encode()).hexdigest()[:16]] for sid, text in
                        con.sql("SELECT sample_id, raw_text FROM samples ORDER BY 1").fetchall()],
            "verdicts": _rows(con, """SELECT sample_id, stage, rule, rule_version, config_hash, passed, score
                                      FROM verdicts ORDER BY ALL"""),
            "question_verdicts": _rows(con, """SELECT question_id, stage, rule, rule_version, passed
                                               FROM question_verdicts ORDER BY ALL"""),
            "selection": _rows(con, f"""SELECT sample_id, domain, difficulty, reason FROM selections
                                        WHERE export_id = '{export}' ORDER BY ALL"""),
            "shards": _rows(con, f"SELECT file, rows, sha256 FROM shards WHERE export_id = '{export}' ORDER BY ALL"),
        }


def check(db: Path, golden: Path = GOLDEN) -> list[str]:
    """Differences from the recorded golden run (empty: identical); records it when RECORD is set."""
    now = snapshot(db)
    if os.environ.get(RECORD):
        golden.write_text(json.dumps(now, indent=1) + "\n")
        return []
    then = json.loads(golden.read_text())
    diffs = []
    for part in then.keys() | now.keys():
        old = {json.dumps(r) for r in then.get(part, [])}
        new = {json.dumps(r) for r in now.get(part, [])}
        diffs += [f"{part}: only in the golden run: {r}" for r in sorted(old - new)[:5]]
        diffs += [f"{part}: only in this run: {r}" for r in sorted(new - old)[:5]]
    return diffs

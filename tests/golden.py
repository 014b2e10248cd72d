"""The golden run: what a run wrote, in a canonical form to compare before and after a refactor.

Every verdict row's key with passed and score, every question verdict, every sample's text
digest, the newest export's selection and each shard's sha256; nothing that names a run or a
time. tests/flows/test_e2e.py compares the e2e run against the recorded goldens; record it anew
(only when a change is meant to change behaviour, and say so in the commit) with

    CURATE_RECORD_GOLDEN=1 .venv/bin/python -m pytest -q tests/flows/test_e2e.py -k golden

vLLM's CPU kernels differ by instruction set, so SmolLM2's sampled text differs between machine
types (seen: 5 of the 8 samples of the e2e run differ between the machine golden_e2e.json was
recorded on and an AMD EPYC with AVX-512 BF16; the same code gives the same run on one machine,
over and over). So there is one golden per machine type: golden_e2e.json (the first) and
golden_e2e.<cpu tag>.json; a run passes when it equals one of them exactly. Recording writes this
machine's file; a behaviour change must re-record every golden it changes (on a machine of each
type), or delete those it cannot.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb

GOLDEN = Path(__file__).parent / "fixtures" / "golden_e2e.json"
RECORD = "CURATE_RECORD_GOLDEN"


def cpu_tag() -> str:
    """The machine type as far as vLLM's CPU kernels care: vendor and the widest vector ISA."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    vendor = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("vendor_id")), "cpu")
    isa = next((f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags), "base")
    return f"{vendor}-{isa}".lower().replace("_", "")


def goldens(golden: Path = GOLDEN) -> list[Path]:
    return [golden] + sorted(golden.parent.glob(f"{golden.stem}.*.json"))


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
    """Differences from the recorded golden runs (empty: identical to one of them); records this
    machine's golden when RECORD is set."""
    now = snapshot(db)
    if os.environ.get(RECORD):
        golden.with_name(f"{golden.stem}.{cpu_tag()}.json").write_text(json.dumps(now, indent=1) + "\n")
        return []
    tried = {path.name: _diffs(json.loads(path.read_text()), now) for path in goldens(golden) if path.exists()}
    if any(not d for d in tried.values()):
        return []
    name, diffs = min(tried.items(), key=lambda item: len(item[1]))
    return [f"no golden run matches (this CPU: {cpu_tag()}; tried {', '.join(tried)}); nearest {name}:"] + diffs


def _diffs(then: dict, now: dict) -> list[str]:
    diffs = []
    for part in then.keys() | now.keys():
        old = {json.dumps(r) for r in then.get(part, [])}
        new = {json.dumps(r) for r in now.get(part, [])}
        diffs += [f"{part}: only in the golden run: {r}" for r in sorted(old - new)[:5]]
        diffs += [f"{part}: only in this run: {r}" for r in sorted(new - old)[:5]]
    return diffs

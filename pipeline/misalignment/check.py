"""`curate badcases check`: does the newest export still hold samples like the bad cases?

Per case, against the samples the newest export selected:
  dirty       samples labelled dirty (for this case or with no case), still shipped;
  signature   samples whose verdicts that count now fail a rule of the case's signature (the
              cheap rules its bad output fails): shipped before that rule counted, or since.
A case is closed when both are empty. Run it after `curate rules enable` and the next export.
"""

from __future__ import annotations

import polars as pl

from pipeline.misalignment.labels import label_per_sample
from pipeline.misalignment.trace.signature import case_signature
from pipeline.store import Store
from schemas.bad_case import BadCase


def newest_export(store: Store) -> str:
    found = store.frame("SELECT export_id FROM exports ORDER BY created_at DESC LIMIT 1")
    if found.is_empty():
        raise ValueError(f"{store.path} has no export yet: run `curate run` first")
    return found["export_id"][0]


def check_cases(store: Store, config=None) -> tuple[str, list[dict]]:
    """(export id, one row per case)."""
    export_id = newest_export(store)
    store.con.execute("CREATE OR REPLACE TEMP TABLE _shipped AS SELECT sample_id FROM selections WHERE export_id = ?",
                      [export_id])
    rows = []
    cases = store.frame("SELECT case_id, prompt, bad_output, expected, tags, model FROM bad_cases ORDER BY created_at, case_id")
    for case in cases.iter_rows(named=True):
        case_id = case.pop("case_id")
        signature = case_signature(BadCase.model_validate(case), config)
        dirty = store.frame(f"""WITH l AS ({label_per_sample('case_id = ? OR case_id IS NULL')})
                                SELECT sample_id FROM l JOIN _shipped USING (sample_id) WHERE label = 'dirty'
                                ORDER BY sample_id""", [case_id])["sample_id"].to_list()
        failing = store.frame("""SELECT DISTINCT v.sample_id FROM latest_verdicts v JOIN _shipped USING (sample_id)
                                 JOIN _rules r ON r.rule = v.rule WHERE NOT v.passed ORDER BY 1""",
                              _rules=pl.DataFrame({"rule": list(signature) or [""]}))["sample_id"].to_list()
        rows.append({"case_id": case_id, "prompt": case["prompt"][:60], "signature": sorted(signature),
                     "dirty_shipped": dirty, "signature_shipped": failing,
                     "status": "closed" if not dirty and not failing else "open"})
    store.con.execute("DROP TABLE _shipped")
    return export_id, rows

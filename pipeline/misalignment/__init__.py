"""The misalignment-elimination loop: from a bad model behaviour (a bad case) to the training
samples behind it (trace/), labels on them, and a rule previewed before it counts.

    cases.py       bad cases in (JSONL with file:line errors, or one from the CLI)
    trace/         candidates behind a case: defect signature, BM25, embeddings, fused
    labels.py      dirty/clean labels as rows
    sql_rules.py   SQL rules: load, check the clause, evaluate read-only
    loop_rules.py  any rule kind (SQL, Python, judge) in one shape
    preview.py     what a rule would remove, written apart (preview_verdicts)
    enable.py      enable (backfill) and disable (stop counting) a rule
"""

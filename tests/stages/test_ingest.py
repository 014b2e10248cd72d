"""Pool reading (pipeline/pools.py) and question selection (pipeline/stages/ingest.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from pipeline.pools import read_pool
from pipeline.stages.ingest import select_questions
from schemas.config import FieldMap, PoolConfig
from schemas.question import question_id_for


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _by_line(result) -> dict:
    return {row.line: row for row in result.quarantine}


# --- JSONL ----------------------------------------------------------------------------------


@pytest.fixture()
def mixed_jsonl(tmp_path: Path) -> Path:
    return _write_lines(tmp_path / "pool.jsonl", [
        json.dumps({"question": "What is 2 + 2?", "answer": "4", "domain": "math"}),  # 1
        "",                                                                            # 2 blank
        '{"question": "broken json", ',                                               # 3
        json.dumps({"answer": "no question here"}),                                   # 4
        "   ",                                                                         # 5 blank
        "",                                                                            # 6 blank
        json.dumps({"question": {"a": 1}, "answer": "x"}),                            # 7
        json.dumps({"question": "  Name a prime.  ", "answer": 7}),                    # 8
        "[1, 2]",                                                                      # 9
    ])


def test_jsonl_good_rows_become_questions(mixed_jsonl: Path):
    result = read_pool(PoolConfig(path=str(mixed_jsonl)))
    assert [q.text for q in result.questions] == ["What is 2 + 2?", "Name a prime."]
    first, second = result.questions
    assert first.question_id == question_id_for("What is 2 + 2?")
    assert first.reference_answer == "4"
    assert first.domain == "math"
    assert first.answer_type == "math"  # a reference and no declared type: math
    assert first.source == "pool.jsonl"
    assert first.pool_path == str(mixed_jsonl)
    assert first.pool_line == 1
    # Blank lines do not shift the physical line numbers.
    assert second.pool_line == 8
    assert second.reference_answer == "7"  # numbers become text
    assert second.domain == "other"  # no domain in the record and none for the pool


def test_jsonl_bad_rows_are_quarantined_with_line_and_field(mixed_jsonl: Path):
    result = read_pool(PoolConfig(path=str(mixed_jsonl)))
    bad = _by_line(result)
    assert sorted(bad) == [3, 4, 7, 9]
    assert bad[3].field is None and bad[3].error.startswith("invalid JSON")
    assert bad[3].raw.startswith('{"question": "broken json"')
    assert bad[4].field == "question" and "missing required field 'question'" in bad[4].error
    assert bad[7].field == "question" and "must be a string or a number, got dict" in bad[7].error
    assert bad[9].field is None and "expected a JSON object, got list" in bad[9].error
    assert all(row.pool_path == str(mixed_jsonl) for row in result.quarantine)


def test_question_id_is_stable_modulo_whitespace():
    assert question_id_for("What is  2 +\n2?") == question_id_for(" What is 2 + 2? ")
    assert question_id_for("What is 2 + 2?") != question_id_for("What is 2 + 3?")
    assert len(question_id_for("x")) == 16


def test_relative_pool_path_is_resolved_against_base_dir(tmp_path: Path):
    _write_lines(tmp_path / "p.jsonl", [json.dumps({"question": "Q?", "answer": "1"})])
    result = read_pool(PoolConfig(path="p.jsonl", domain="math"), base_dir=tmp_path)
    assert [q.text for q in result.questions] == ["Q?"]
    assert result.questions[0].pool_path == str(tmp_path / "p.jsonl")


def test_missing_file_is_quarantined(tmp_path: Path):
    result = read_pool(PoolConfig(path=str(tmp_path / "nope.jsonl")))
    assert result.questions == []
    assert len(result.quarantine) == 1
    row = result.quarantine[0]
    assert row.error == "file not found" and row.line is None
    assert row.pool_path == str(tmp_path / "nope.jsonl")


def test_unsupported_format_is_quarantined(tmp_path: Path):
    path = tmp_path / "pool.csv"
    path.write_text("question,answer\nQ,1\n")
    result = read_pool(PoolConfig(path=str(path)))
    assert result.questions == []
    assert len(result.quarantine) == 1
    assert "unsupported pool format '.csv'" in result.quarantine[0].error


# --- JSON arrays and records_key ------------------------------------------------------------


def test_json_array_records_point_at_their_first_line(tmp_path: Path):
    records = [
        {"question": "A?", "answer": "1"},
        {"question": "B?\nsecond line", "answer": "2"},
        {"answer": "3"},
        {"question": "D?", "answer": "4"},
    ]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    lines = path.read_text().splitlines()

    result = read_pool(PoolConfig(path=str(path), domain="math"))

    assert [q.text for q in result.questions] == ["A?", "B?\nsecond line", "D?"]
    got = [q.pool_line for q in result.questions]
    assert got == [2, 6, 13]
    for line_no in got:
        assert lines[line_no - 1].strip() == "{"  # the record's opening brace
    assert [(r.line, r.field) for r in result.quarantine] == [(10, "question")]
    assert json.loads(result.quarantine[0].raw) == {"answer": "3"}


def test_invalid_json_file_is_quarantined_with_the_error_line(tmp_path: Path):
    path = tmp_path / "pool.json"
    path.write_text('[\n  {"question": "A?"},\n  {"question": }\n]\n')
    result = read_pool(PoolConfig(path=str(path)))
    assert result.questions == []
    assert [(r.line, r.field) for r in result.quarantine] == [(3, None)]
    assert result.quarantine[0].error.startswith("invalid JSON")


def _bigbench_pool(path: Path) -> PoolConfig:
    return PoolConfig(
        path=str(path), source="bb-toy", domain="logic", records_key="examples",
        question_template="{{ pool_meta.task_prefix | default('') | trim }}\n\n{{ input }}",
        answer_extract="bigbench",
    )


def test_bigbench_records_key_with_pool_meta_and_target_scores(tmp_path: Path):
    doc = {
        "name": "toy", "description": "a toy task", "task_prefix": "Answer the question.\n",
        "keywords": ["logic"],
        "examples": [
            {"input": "Is the sky blue?", "target_scores": {"Yes": 1, "No": 0}},
            {"input": "Is fire cold?", "target_scores": {"Yes": 0, "No": 1, "Maybe": 0.5}},
            {"input": "How many legs has a cat?", "target": ["four", "4"]},
            {"input": "Who wrote it?", "target": "Homer"},
            {"input": "No target"},
        ],
    }
    path = tmp_path / "task.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    lines = path.read_text().splitlines()

    result = read_pool(_bigbench_pool(path))

    q1, q2, q3, q4 = result.questions
    assert q1.text == "Answer the question.\n\nIs the sky blue?\n\nOptions: Yes; No"
    assert (q1.reference_answer, q1.answer_type) == ("Yes", "choice")
    assert q2.text.endswith("\n\nOptions: Yes; No; Maybe")
    assert q2.reference_answer == "No"  # the max-scoring option
    assert (q3.reference_answer, q3.answer_type) == ("4", "math")  # numeric alternative preferred
    assert (q4.reference_answer, q4.answer_type) == ("Homer", "text")
    assert all(q.domain == "logic" and q.source == "bb-toy" for q in result.questions)
    for q in result.questions:
        assert lines[q.pool_line - 1].strip() == "{"
    assert q1.pool_line == lines.index('  "examples": [') + 2
    assert [(r.field, "missing required field 'target'" in r.error) for r in result.quarantine] == [("target", True)]
    assert lines[result.quarantine[0].line - 1].strip() == "{"
    assert result.quarantine[0].line > q4.pool_line


def test_records_key_missing_is_quarantined(tmp_path: Path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"name": "x", "data": []}))
    result = read_pool(_bigbench_pool(path))
    assert result.questions == []
    assert [(r.line, r.field) for r in result.quarantine] == [(1, "examples")]
    assert "no key 'examples'" in result.quarantine[0].error


def test_records_key_is_found_at_top_level_even_if_nested_earlier(tmp_path: Path):
    doc = {"canary": {"examples": []},
           "examples": [{"question": "A?", "answer": "1"}, {"question": "B?", "answer": "2"}]}
    path = tmp_path / "task.json"
    path.write_text(json.dumps(doc, indent=2))
    result = read_pool(PoolConfig(path=str(path), domain="math", records_key="examples"))
    assert [q.text for q in result.questions] == ["A?", "B?"]
    assert [q.pool_line for q in result.questions] == [6, 10]


def test_question_template_with_missing_variable_is_quarantined(tmp_path: Path):
    path = _write_lines(tmp_path / "mbpp.jsonl", [
        json.dumps({"prompt": "Write add(a, b).", "test_list": ["assert add(1, 2) == 3"]}),
        json.dumps({"prompt": "Write sub(a, b)."}),
    ])
    pool = PoolConfig(path=str(path), domain="code",
                      question_template="{{ prompt }}\nYour code should pass this test:\n{{ test_list[0] }}",
                      fields=FieldMap(question="prompt", answer=None, tests="test_list"), answer_type="code")
    result = read_pool(pool)
    [q] = result.questions
    assert q.text == "Write add(a, b).\nYour code should pass this test:\nassert add(1, 2) == 3"
    assert q.tests == ["assert add(1, 2) == 3"]
    assert (q.answer_type, q.reference_answer) == ("code", None)
    [bad] = result.quarantine
    assert (bad.line, bad.field) == (2, "question_template")
    assert "test_list" in bad.error


# --- answer extraction, field mapping, domains ------------------------------------------------


def test_gsm8k_answer_extract(tmp_path: Path):
    path = _write_lines(tmp_path / "gsm8k.jsonl", [
        json.dumps({"question": "Eggs?", "answer": "16 - 3 - 4 = <<16-3-4=9>>9\n9 * 8 = 72\n#### 72"}),
        json.dumps({"question": "Money?", "answer": "Lots.\n#### 1,234"}),
        json.dumps({"question": "No marker?", "answer": "The answer is 5."}),
    ])
    result = read_pool(PoolConfig(path=str(path), domain="math", answer_extract="gsm8k", answer_type="math"))
    assert [(q.text, q.reference_answer) for q in result.questions] == [("Eggs?", "72"), ("Money?", "1234")]
    [bad] = result.quarantine
    assert (bad.line, bad.field) == (3, "answer")
    assert "####" in bad.error


def test_field_mapping_with_dotted_paths(tmp_path: Path):
    path = _write_lines(tmp_path / "p.jsonl", [
        json.dumps({"problem": "Solve x + 1 = 3.", "solution": "2", "meta": {"topic": "algebra"}}),
        json.dumps({"question": "ignored: not the mapped field", "solution": "1"}),
    ])
    pool = PoolConfig(path=str(path), domain="math",
                      fields=FieldMap(question="problem", answer="solution", subdomain="meta.topic"))
    result = read_pool(pool)
    [q] = result.questions
    assert (q.text, q.reference_answer, q.subdomain) == ("Solve x + 1 = 3.", "2", "algebra")
    [bad] = result.quarantine
    assert (bad.line, bad.field) == (2, "problem")


def test_list_and_boolean_references(tmp_path: Path):
    path = _write_lines(tmp_path / "p.jsonl", [
        json.dumps({"question": "Roots?", "answer": [1, 2]}),
        json.dumps({"question": "True?", "answer": True}),
        json.dumps({"question": "Bad?", "answer": [{"x": 1}]}),
    ])
    result = read_pool(PoolConfig(path=str(path), domain="math"))
    assert [q.reference_answer for q in result.questions] == ["[1, 2]", "True"]
    assert [(r.line, r.field) for r in result.quarantine] == [(3, "answer")]


def test_domain_map_and_unknown_domains(tmp_path: Path):
    path = _write_lines(tmp_path / "tqa.jsonl", [
        json.dumps({"Question": "Q1?", "Answer": "1", "field": "Math"}),
        json.dumps({"Question": "Q2?", "Answer": "2", "field": "Physics"}),
        json.dumps({"Question": "Q3?", "Answer": "3", "field": "Biology"}),
    ])
    pool = PoolConfig(path=str(path), fields=FieldMap(question="Question", answer="Answer", domain="field"),
                      domain_map={"Math": "math", "Physics": "science"})
    result = read_pool(pool)
    assert [(q.text, q.domain) for q in result.questions] == [("Q1?", "math"), ("Q2?", "science")]
    [bad] = result.quarantine
    assert (bad.line, bad.field) == (3, "field")
    assert "'Biology' is not in the pool's domain_map" in bad.error


def test_domain_outside_known_domains_is_quarantined(tmp_path: Path):
    path = _write_lines(tmp_path / "p.jsonl", [
        json.dumps({"question": "Q1?", "domain": "Science"}),
        json.dumps({"question": "Q2?", "domain": "biology"}),
    ])
    result = read_pool(PoolConfig(path=str(path)))
    assert [q.domain for q in result.questions] == ["science"]  # case-insensitive
    [bad] = result.quarantine
    assert (bad.line, bad.field) == (2, "domain")
    assert "'biology' is not one of" in bad.error


def test_record_domain_overrides_pool_domain(tmp_path: Path):
    path = _write_lines(tmp_path / "p.jsonl", [
        json.dumps({"question": "Q1?", "domain": "logic"}),
        json.dumps({"question": "Q2?"}),
    ])
    result = read_pool(PoolConfig(path=str(path), domain="math"))
    assert [q.domain for q in result.questions] == ["logic", "math"]
    assert all(q.reference_answer is None and q.answer_type is None for q in result.questions)


# --- Parquet and HF datasets folders ------------------------------------------------------------


ROWS = [
    {"problem": "P1?", "solution": "1", "domain": "math"},
    {"problem": "P2?", "solution": "2", "domain": "science"},
    {"problem": None, "solution": "3", "domain": "math"},
]
MAPPING = FieldMap(question="problem", answer="solution")


def test_parquet_pool(tmp_path: Path):
    path = tmp_path / "pool.parquet"
    pl.DataFrame(ROWS).write_parquet(path)
    result = read_pool(PoolConfig(path=str(path), fields=MAPPING))
    assert [(q.text, q.reference_answer, q.domain, q.pool_line) for q in result.questions] == [
        ("P1?", "1", "math", 1), ("P2?", "2", "science", 2)]
    assert [(r.line, r.field) for r in result.quarantine] == [(3, "problem")]


def test_hf_datasets_folder_pool(tmp_path: Path):
    import datasets

    folder = tmp_path / "hf_pool"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    result = read_pool(PoolConfig(path=str(folder), fields=MAPPING))
    assert [(q.text, q.reference_answer, q.domain, q.pool_line) for q in result.questions] == [
        ("P1?", "1", "math", 1), ("P2?", "2", "science", 2)]
    assert [(r.line, r.field) for r in result.quarantine] == [(3, "problem")]


def test_hf_datasets_dict_folder_uses_the_configured_split(tmp_path: Path):
    import datasets

    folder = tmp_path / "hf_dict"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(ROWS[:1]),
        "test": datasets.Dataset.from_list(ROWS[1:2]),
    }).save_to_disk(str(folder))
    default = read_pool(PoolConfig(path=str(folder), fields=MAPPING))
    test = read_pool(PoolConfig(path=str(folder), fields=MAPPING, split="test"))
    missing = read_pool(PoolConfig(path=str(folder), fields=MAPPING, split="validation"))
    assert [q.text for q in default.questions] == ["P1?"]
    assert [q.text for q in test.questions] == ["P2?"]
    assert missing.questions == []
    assert [(r.field, "'validation'" in r.error) for r in missing.quarantine] == [("split", True)]


# --- the shipped default config -----------------------------------------------------------------


def test_default_config_pools_read_cleanly():
    from pipeline.config_loading import load_run_config

    config = load_run_config()
    assert len(config.pools) >= 10
    domains: Counter = Counter()
    quarantined = []
    for pool in config.pools:
        result = read_pool(pool)
        quarantined.extend(result.quarantine)
        assert result.questions, f"{pool.path} gave no questions"
        domains.update(q.domain for q in result.questions)
    assert quarantined == []
    assert {"math", "code", "science", "logic"} <= set(domains)
    assert all(domains[d] >= 100 for d in ("math", "code", "science", "logic")), domains
    assert sum(domains.values()) > 20000


# --- select_questions ---------------------------------------------------------------------------


def _pool_frame(sizes: dict[str, int]) -> pl.DataFrame:
    rows = [{"question_id": f"{d}-{i:04d}", "domain": d} for d, n in sizes.items() for i in range(n)]
    return pl.DataFrame(rows)


def test_select_spreads_the_limit_evenly_over_domains():
    pool = _pool_frame({"math": 100, "science": 100, "logic": 100, "code": 100})
    chosen = select_questions(pool, 40, seed=0)
    assert len(chosen) == len(set(chosen)) == 40
    assert Counter(q.split("-")[0] for q in chosen) == {"math": 10, "science": 10, "logic": 10, "code": 10}


def test_select_small_domains_pass_their_unused_share_on():
    pool = _pool_frame({"math": 100, "code": 3, "science": 50, "logic": 50})
    chosen = select_questions(pool, 40, seed=0)
    counts = Counter(q.split("-")[0] for q in chosen)
    assert len(chosen) == 40
    assert counts["code"] == 3
    others = [counts["math"], counts["science"], counts["logic"]]
    assert sum(others) == 37 and max(others) - min(others) <= 1


def test_select_limit_above_pool_size_returns_everything_once():
    pool = _pool_frame({"math": 5, "code": 2})
    chosen = select_questions(pool, 100, seed=0)
    assert sorted(chosen) == sorted(pool["question_id"].to_list())


def test_select_is_deterministic_per_seed_and_differs_across_seeds():
    pool = _pool_frame({"math": 200, "code": 200})
    a = select_questions(pool, 20, seed=0)
    assert a == select_questions(pool, 20, seed=0)
    assert a == select_questions(pool.reverse(), 20, seed=0)  # independent of pool order
    b = select_questions(pool, 20, seed=1)
    assert set(a) != set(b)
    assert Counter(q.split("-")[0] for q in b) == {"math": 10, "code": 10}


def test_select_none_limit_returns_all():
    pool = _pool_frame({"math": 7, "code": 3, "logic": 1})
    chosen = select_questions(pool, None, seed=3)
    assert sorted(chosen) == sorted(pool["question_id"].to_list())
    assert select_questions(pool.head(0), 5, seed=0) == []
    assert select_questions(pool, 0, seed=0) == []


def _weighted_pool(spec: dict[str, list[tuple[int, float | None]]]) -> pl.DataFrame:
    """domain -> [(questions, weight) per pool] -> rows with pool_index and weight."""
    rows, index = [], 0
    for domain, pools in spec.items():
        for size, weight in pools:
            rows += [{"question_id": f"{domain}-{index}-{i:04d}", "domain": domain, "pool_index": index,
                      "weight": weight} for i in range(size)]
            index += 1
    return pl.DataFrame(rows, schema={"question_id": pl.String, "domain": pl.String, "pool_index": pl.Int32,
                                      "weight": pl.Float64})


def test_select_deals_a_domains_picks_to_its_pools_by_weight():
    # math: a big pool at weight 1, a small one at weight 3, one never drawn (weight 0); code unweighted.
    pool = _weighted_pool({"math": [(500, 1.0), (60, 3.0), (300, 0.0)], "code": [(100, None)]})
    chosen = select_questions(pool, 40, seed=0)
    by_pool = Counter(q.rsplit("-", 1)[0] for q in chosen)
    assert by_pool == {"math-0": 5, "math-1": 15, "code-3": 20}
    assert select_questions(pool, 40, seed=0) == chosen == select_questions(pool.reverse(), 40, seed=0)
    # A pool that runs out passes its share on; weight 0 is never drawn, even without a limit.
    everything = select_questions(pool, None, seed=0)
    assert not any(q.startswith("math-2-") for q in everything) and len(everything) == 660
    small = _weighted_pool({"math": [(3, 5.0), (100, 1.0)]})
    assert Counter(q.rsplit("-", 1)[0] for q in select_questions(small, 10, seed=0)) == {"math-0": 3, "math-1": 7}


def test_ingest_reports_each_questions_pool_weight(tmp_path):
    from pipeline.stages.ingest import ingest
    from pipeline.store import Store
    from schemas.config import CurateConfig

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"question": "What is 1 + 1?", "answer": "2", "domain": "math"}\n')
    b.write_text('{"question": "What is 2 + 2?", "answer": "4", "domain": "math"}\n')
    config = CurateConfig(pools=[{"path": str(a), "weight": 0}, {"path": str(b)}])
    with Store(tmp_path / "x.duckdb") as store:
        report = ingest(store, config, "run-1")
    assert sorted(report.pool.select("pool_index", "weight").rows()) == [(0, 0.0), (1, None)]
    assert len(select_questions(report.pool, 5, seed=0)) == 1  # the weight-0 pool is never drawn
    # Screening keeps the weights: the run selects from what it lets through.
    from pipeline.benchmarks import index_for
    from pipeline.stages.screen import screen_questions, usable

    with Store(tmp_path / "x.duckdb") as store:
        screen_questions(store, config, "run-1", report.pool, index_for(config))
        kept = usable(store, report.pool)
    assert kept.columns == report.pool.columns and select_questions(kept, 5, seed=0) == \
        select_questions(report.pool, 5, seed=0)

"""The labelled texts the kNN is fitted on, as (text, domain, subdomain, source) rows on the taxonomy.

The labelled pools (data/seeds) carry their own labels: MATH subject, TheoremQA field/subfield,
SciBench textbook, BIG-bench task, MBPP (code) and GSM8K (arithmetic word problems). BIG-bench rows
are the bare `input`: the task prefix is shared by a whole task, so with it the kNN would learn the
prefix, not the question (and the held-out split would be trivially easy).

The pools are few sources of few question forms, and no pool is `other`: fitted on them alone the
kNN learned their sources, not the domains. data/labels/domains_train.jsonl adds questions of
other forms from other sources (trivia, law, science exams, programming exercises, interview questions, logic
puzzles and arguments, word problems; data/labels/build/domains_train.py), `other` included.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.hashing import seed_from
from schemas.domains import DomainTaxonomy
from schemas.question import DOMAINS

SEEDS = Path(__file__).resolve().parents[2] / "data" / "seeds"
VARIED = Path(__file__).resolve().parents[2] / "data" / "labels" / "domains_train.jsonl"

MATH_SUBJECTS = {"Algebra": "algebra", "Counting & Probability": "counting_and_probability",
                 "Geometry": "geometry", "Intermediate Algebra": "intermediate_algebra",
                 "Number Theory": "number_theory", "Prealgebra": "prealgebra", "Precalculus": "precalculus"}
# TheoremQA subfield (unique across its fields) -> label: Math onto the MATH-style names.
_TQA_MATH = {"Calculus": "calculus", "Combinatorics": "counting_and_probability", "Algebra": "algebra",
             "Number theory": "number_theory", "Geometry": "geometry", "Statistics": "statistics",
             "Probability theory": "counting_and_probability", "Stochastic process": "statistics",
             "Mathematical analysis": "analysis", "Numerical analysis": "analysis", "Complex analysis": "analysis",
             "Real analysis": "analysis", "Functional analysis": "analysis", "Group theory": "algebra"}
_TQA_SCIENCE = {
    "eecs": ["Signal processing", "Graph theory", "Information theory", "Computer networking", "Machine learning"],
    "finance": ["Economics", "Quantitive methods", "Derivatives", "Fixed income", "Portfolio management",
                "Equity investments"],
    "physics": ["Kinetics", "Electromagnetism", "Atomic physics", "Optics", "Wave", "Condensed matter physics",
                "Relativity", "Particle", "Celestial mechanics", "Statistical physics", "Fluid mechanics", "Quantum",
                "Classic mechanics"],
    "thermodynamics": ["Thermodynamics"],
}
THEOREMQA = {**{k: ("math", v) for k, v in _TQA_MATH.items()},
             **{f: ("science", sub) for sub, fields in _TQA_SCIENCE.items() for f in fields}}
# SciBench textbook (file name) -> label. atkins/matter: physical chemistry; chemmc/quan: quantum
# chemistry; thermo: chemical thermodynamics; fund/class: physics; the rest are math texts.
SCIBENCH = {"atkins": ("science", "chemistry"), "matter": ("science", "chemistry"),
            "chemmc": ("science", "quantum_chemistry"), "quan": ("science", "quantum_chemistry"),
            "thermo": ("science", "thermodynamics"), "fund": ("science", "physics"),
            "class": ("science", "physics"), "diff": ("math", "differential_equations"),
            "stat": ("math", "statistics"), "calculus": ("math", "calculus")}
BIGBENCH = {"navigate": ("logic", "navigation"), "causal_judgment": ("logic", "causal_judgment"),
            "date_understanding": ("logic", "date_understanding"),
            "logical_deduction": ("logic", "logical_deduction"), "object_counting": ("logic", "object_counting"),
            "penguins_in_a_table": ("logic", "table_reasoning"),
            "tracking_shuffled_objects": ("logic", "tracking_objects"), "physics": ("science", "physics")}

# What the stage can infer from a stored question: its raw pool subdomain, or its source
# name in configs/default.yaml, onto the taxonomy (see classify.metadata_subdomain).
SUBDOMAIN_ALIASES = {**MATH_SUBJECTS, **{k: v[1] for k, v in THEOREMQA.items()}}
SOURCE_SUBDOMAINS = {"gsm8k": "arithmetic_word_problems", "mbpp": "python_functions",
                     **{f"scibench-{k}": v[1] for k, v in SCIBENCH.items()},
                     **{f"bigbench-{k}": v[1] for k, v in BIGBENCH.items()},
                     "bigbench-penguins": "table_reasoning"}  # the source name the default config uses


def _rows(texts, domain, subdomain, source) -> list[dict]:
    return [{"text": t, "domain": domain, "subdomain": subdomain, "source": source} for t in texts]


def load_varied(path: Path = VARIED) -> list[dict]:
    """The rows of a labelled file (JSON lines: text, domain, subdomain or null, source), checked:
    an error names the line and field of the first bad row."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e})") from None
            for field in ("text", "domain", "source"):
                if not isinstance(r.get(field), str) or not r[field].strip():
                    raise ValueError(f"{path}:{n}: field {field!r} must be a non-empty string (got {r.get(field)!r})")
            if r["domain"] not in DOMAINS:
                raise ValueError(f"{path}:{n}: field 'domain' is {r['domain']!r}, not one of {list(DOMAINS)}")
            if r.get("subdomain") is not None and not isinstance(r["subdomain"], str):
                raise ValueError(f"{path}:{n}: field 'subdomain' must be a string or null (got {r['subdomain']!r})")
            rows += _rows([r["text"]], r["domain"], r.get("subdomain"), r["source"])
    return rows


def load_labelled(seeds: Path = SEEDS, varied: Path | None = VARIED) -> pl.DataFrame:
    """Every labelled pool, then the rows of `varied` (None: the pools only), in a fixed order;
    blank texts dropped, repeated texts kept once."""
    rows: list[dict] = []
    for r in json.loads((seeds / "math_train.json").read_text()):
        rows += _rows([r["problem"]], "math", MATH_SUBJECTS[r["type"]], "math")
    for r in json.loads((seeds / "theoremqa.json").read_text()):
        rows += _rows([r["Question"]], *THEOREMQA[r["subfield"]], "theoremqa")
    for book, (domain, sub) in SCIBENCH.items():
        records = json.loads((seeds / "scibench" / f"{book}.json").read_text())
        rows += _rows([r["problem_text"] for r in records], domain, sub, f"scibench-{book}")
    for task, (domain, sub) in BIGBENCH.items():
        path = sorted((seeds / "bigbench" / task).rglob("task.json"))[0]  # some tasks nest a variant
        examples = json.loads(path.read_text())["examples"]
        rows += _rows([e["input"] for e in examples], domain, sub, f"bigbench-{task}")
    rows += _rows([r["prompt"] for r in json.loads((seeds / "mbpp_sanitized.json").read_text())],
                  "code", "python_functions", "mbpp")
    with (seeds / "gsm8k_train.jsonl").open() as f:
        rows += _rows([json.loads(line)["question"] for line in f if line.strip()],
                      "math", "arithmetic_word_problems", "gsm8k")
    if varied is not None:
        rows += load_varied(varied)
    frame = pl.DataFrame(rows, schema={"text": pl.String, "domain": pl.String, "subdomain": pl.String,
                                       "source": pl.String})
    frame = frame.with_columns(pl.col("text").str.strip_chars()).filter(pl.col("text") != "")
    # A text in two pools would be its own neighbour across a train/test split.
    return frame.unique("text", keep="first", maintain_order=True)


def on_taxonomy(frame: pl.DataFrame, taxonomy: DomainTaxonomy) -> pl.DataFrame:
    """Rows of domains the taxonomy has; sub-domains it does not list become null."""
    pairs = pl.DataFrame([{"domain": d, "subdomain": s} for d, subs in taxonomy.items() for s in subs],
                         schema={"domain": pl.String, "subdomain": pl.String}).with_columns(listed=pl.lit(True))
    listed_domains = [d for d, subs in taxonomy.items()]
    return (frame.filter(pl.col("domain").is_in(listed_domains))
            .join(pairs, on=["domain", "subdomain"], how="left", maintain_order="left")
            .with_columns(subdomain=pl.when(pl.col("listed")).then(pl.col("subdomain")))
            .drop("listed"))


def cap_per_subdomain(frame: pl.DataFrame, cap: int, seed: int) -> pl.DataFrame:
    """At most `cap` rows per (domain, subdomain), a seeded sample, original order kept. The
    sample is a prefix of a seeded shuffle, so a smaller cap takes a subset of a larger one
    (and finds its embeddings cached)."""
    keep = np.zeros(frame.height, dtype=bool)
    groups = frame.with_row_index("_i").group_by(["domain", "subdomain"], maintain_order=True).agg("_i")
    for domain, sub, idx in groups.iter_rows():
        keep[np.random.default_rng(seed_from(seed, domain, sub)).permutation(np.asarray(idx))[:cap]] = True
    return frame.filter(pl.Series(keep))


def holdout_split(labels: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) row indices: `fraction` of each label held out, at least one
    when the label has two or more rows."""
    labels_arr = np.asarray(labels, dtype=object)
    test: list[np.ndarray] = []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == label)
        n = min(len(idx) - 1, max(1, round(len(idx) * fraction))) if len(idx) > 1 else 0
        test.append(np.random.default_rng(seed_from(seed, label)).choice(idx, n, replace=False))
    test_idx = np.sort(np.concatenate(test)) if test else np.array([], dtype=int)
    train_idx = np.setdiff1d(np.arange(len(labels_arr)), test_idx)
    return train_idx, test_idx

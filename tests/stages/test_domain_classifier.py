"""Domain classifier (pipeline/domains) with the real all-MiniLM-L6-v2: embeddings, kNN,
metadata-first classification and the question_domains stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from pipeline.domain_classifier.classify import classify_frame, classify_questions, metadata_subdomain
from pipeline.domain_classifier.embed import Embedder
from pipeline.domain_classifier.knn import KnnClassifier, load_or_fit
from pipeline.domain_classifier.labelled import (VARIED, cap_per_subdomain, holdout_split, load_labelled, load_varied,
                                                 on_taxonomy)
from pipeline.store import Store
from schemas.domains import DomainConfig, DomainTaxonomy
from schemas.question import DOMAINS
from tests.stages.test_store import question_frame

LABELLED = {  # (domain, subdomain) -> texts; the last of each is held out
    ("math", "algebra"): [
        "Solve for x: 3x + 5 = 20.", "Find all real x such that x^2 - 5x + 6 = 0.", "Simplify (2x^3)(4x^2).",
        "If 2a - b = 7 and a + b = 5, what is a?", "Factor the expression x^2 + 7x + 12.",
        "What is the value of y if 4y - 9 = 3y + 2?"],
    ("code", "python_functions"): [
        "Write a Python function to reverse a string.", "Write a function that returns the largest element of a list.",
        "Write a python function to count the vowels in a string.",
        "Write a function to check whether a number is prime.",
        "Write a function to merge two sorted lists into one sorted list.",
        "Write a python function to remove duplicates from a list while keeping the order."],
    ("logic", "date_understanding"): [
        "Today is March 3, 2021. What is the date one week from today in MM/DD/YYYY?",
        "Yesterday was Jan 1, 2000. What is the date tomorrow in MM/DD/YYYY?",
        "The concert was scheduled for 06/01/1943 but was delayed by one day. What is the date today?",
        "Jane was born on the last day of February in 2001. Today is her 16th birthday. What is the date yesterday?",
        "Today is Christmas Eve of 1937. What is the date 10 days ago in MM/DD/YYYY?",
        "It is 4/19/1969 today. What is the date 24 hours later in MM/DD/YYYY?"],
    ("science", "chemistry"): [
        "Calculate the molar mass of sodium chloride.",
        "How many moles of oxygen are needed to burn 2 moles of methane?",
        "What is the pH of a 0.01 M HCl solution?", "Balance the chemical equation for the combustion of propane.",
        "Calculate the enthalpy change when 10 g of liquid water freezes.",
        "What is the pH of a 0.001 M sodium hydroxide solution?"],
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def classifier(embedder) -> KnnClassifier:
    rows = [(d, s, t) for (d, s), texts in LABELLED.items() for t in texts[:-1]]
    emb = embedder.embed([t for _, _, t in rows])
    return KnnClassifier(k=3, embedder=embedder).fit(emb, [d for d, _, _ in rows], [s for _, s, _ in rows])


# --- embeddings -----------------------------------------------------------------------------


def test_embeddings_are_unit_vectors_and_deterministic(embedder):
    texts = ["What is 2 + 2?", "Write a function to sort a list.", "x" * 5000]  # the last is truncated
    a, b = embedder.embed(texts), embedder.embed(texts)
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    # Batching (and the length sort) does not change a text's vector beyond float noise.
    np.testing.assert_allclose(embedder.embed([texts[1]])[0], a[1], atol=1e-5)


def test_similar_texts_are_nearer_than_unrelated(embedder):
    a, b, c = embedder.embed(["What is the derivative of x^2 with respect to x?",
                              "Differentiate the function f(x) = x squared.",
                              "Write a Python function that reverses a linked list."])
    assert a @ b > a @ c + 0.2


def test_empty_text_is_an_error(embedder):
    with pytest.raises(ValueError, match="text #1.*empty"):
        embedder.embed(["fine", "   "])


# --- kNN --------------------------------------------------------------------------------------


def test_knn_predicts_held_out_items(classifier):
    held_out = {texts[-1]: key for key, texts in LABELLED.items()}
    pred = classifier.classify(list(held_out))
    assert list(zip(pred["domain"], pred["subdomain"])) == list(held_out.values())
    assert pred["confidence"].min() > 0.5 and pred["confidence"].max() <= 1.0


def test_balanced_votes_let_a_domain_with_few_labelled_rows_win():
    """Six math rows at similarity 0.8 outvote two code rows at 0.95 by numbers (4.8 to 1.9); divided by
    each domain's share of the rows (6/8, 2/8) the code rows win (6.4 to 7.6)."""
    def unit(sim: float) -> np.ndarray:  # a vector at cosine `sim` from the query e0
        v = np.zeros(384, np.float32)
        v[0], v[1] = sim, np.sqrt(1 - sim ** 2)
        return v

    labelled = np.stack([unit(0.8)] * 6 + [unit(0.95)] * 2)
    domains, query = ["math"] * 6 + ["code"] * 2, unit(1.0)[None, :]
    raw = KnnClassifier(k=8).fit(labelled, domains, [None] * 8).predict(query)
    balanced = KnnClassifier(k=8, balanced=True).fit(labelled, domains, [None] * 8).predict(query)
    assert raw["domain"][0] == "math" and balanced["domain"][0] == "code"
    assert balanced["confidence"][0] == pytest.approx(7.6 / (7.6 + 6.4), abs=1e-4)
    assert balanced["top_similarity"][0] == pytest.approx(0.95, abs=1e-6)


def test_knn_fit_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="as many labels"):
        KnnClassifier().fit(np.zeros((3, 384), np.float32), ["math"] * 2, [None] * 3)


def test_load_or_fit_embeds_once_then_reads_the_cache(tmp_path: Path, embedder):
    cfg = DomainConfig(max_per_subdomain=2)  # 2 rows per sub-domain: about 50 texts
    first = load_or_fit(cfg, tmp_path, embedder)
    assert len(first.domains) == 2 * sum(len(s) for _, s in cfg.taxonomy.items())
    assert first.embed_seconds > 0 and len(list(tmp_path.glob("embeddings-*.npz"))) == 1
    second = load_or_fit(cfg.model_copy(update={"k": 9}), tmp_path)  # k changes nothing embedded
    assert second._embedder is None and second.embed_seconds == 0  # the model is not even loaded
    assert second.k == 9 and second.fingerprint != first.fingerprint
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.subdomains.tolist() == first.subdomains.tolist()
    # A larger cap keeps the smaller cap's rows (nested samples): only the new rows are embedded.
    third = load_or_fit(cfg.model_copy(update={"max_per_subdomain": 3}), tmp_path, embedder)
    subdomains = sum(len(s) for _, s in cfg.taxonomy.items())
    assert len(third.domains) == 3 * subdomains and third.embed_seconds > 0
    with np.load(next(tmp_path.glob("embeddings-*.npz"))) as cached:
        assert len(cached["keys"]) == 3 * subdomains  # 2 per sub-domain from the first call, 1 new


def test_labelled_pools_sample_and_split_deterministically():
    frame = on_taxonomy(load_labelled(), DomainTaxonomy())
    assert frame["subdomain"].null_count() == 0 and frame["text"].is_unique().all()
    assert set(frame["domain"]) == {"math", "code", "science", "logic", "other"}
    assert set(on_taxonomy(load_labelled(varied=None), DomainTaxonomy())["domain"]) == {"math", "code", "science",
                                                                                      "logic"}
    a, b = cap_per_subdomain(frame, 50, 0), cap_per_subdomain(frame, 50, 0)
    assert a.equals(b) and a.group_by("subdomain").len()["len"].max() == 50
    assert not a.equals(cap_per_subdomain(frame, 50, 1))
    train, test = holdout_split(a["subdomain"].to_list(), 0.2, 0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == a.height
    assert set(a[test.tolist()]["subdomain"]) == set(a["subdomain"])  # every sub-domain is held out
    # A taxonomy without a sub-domain keeps its rows' domain and drops the sub-domain.
    narrow = on_taxonomy(frame, DomainTaxonomy(code=[]))
    code_rows = frame.filter(pl.col("domain") == "code").height
    assert code_rows > 1000 and narrow.filter(pl.col("domain") == "code")["subdomain"].null_count() == code_rows


# The unseen set's sources (data/labels/build/domains_unseen.py): no training row may come from them.
UNSEEN_SOURCES = {"mmlu", "agieval", "aqua-rat", "lsat", "logiqa", "cruxeval", "exercism", "truthfulqa"}


def test_shipped_training_file_is_on_the_taxonomy_and_apart_from_the_unseen_set():
    from filters.screening.decontam import DecisionRule, NgramIndex

    rows = pl.DataFrame(load_varied(VARIED))
    assert rows.height > 4000 and rows["text"].str.strip_chars().str.len_chars().min() > 0
    tax = DomainTaxonomy()
    off = [(d, s) for d, s in rows.select("domain", "subdomain").unique().iter_rows() if not tax.has(d, s)]
    assert off == []  # every (domain, sub-domain) is in the default taxonomy
    assert rows.group_by("domain").len()["len"].min() >= 300 and set(rows["domain"]) == set(DOMAINS)
    assert not set(rows["source"]) & UNSEEN_SOURCES
    unseen = [json.loads(line)["question"] for line in (VARIED.parent / "domains_unseen.jsonl").open()]
    # The screen stage's n-gram rule (its rewrite rule is off: it matches trivia on option letters alone).
    index = NgramIndex([("unseen", str(i), q) for i, q in enumerate(unseen)], DecisionRule(order_free_min_coverage=0))
    assert [t for t in rows["text"] if index.match(t)] == []
    assert not {" ".join(t.lower().split()) for t in rows["text"]} & {" ".join(q.lower().split()) for q in unseen}


def test_a_bad_labelled_row_is_named_by_line_and_field(tmp_path: Path):
    good = {"text": "Who wrote Hamlet?", "domain": "other", "subdomain": "literature", "source": "quiz"}
    path = tmp_path / "labels.jsonl"
    for bad, message in [({**good, "domain": "history"}, r"labels.jsonl:2: field 'domain' is 'history'"),
                         ({**good, "text": "  "}, r"labels.jsonl:2: field 'text' must be a non-empty string"),
                         ({**good, "subdomain": 3}, r"labels.jsonl:2: field 'subdomain' must be a string or null")]:
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=message):
            load_varied(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ValueError, match="labels.jsonl:2: not JSON"):
        load_varied(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "subdomain": None, "text": "Who painted it?"}) + "\n")
    frame = load_labelled(varied=path)
    assert frame.tail(2).select("domain", "subdomain", "source").rows() == [("other", "literature", "quiz"),
                                                                            ("other", None, "quiz")]


# --- config -------------------------------------------------------------------------------------


def test_taxonomy_rejects_unknown_domains_and_ambiguous_subdomains():
    with pytest.raises(ValidationError, match="unknown top-level domain.*maths"):
        DomainConfig.model_validate({"taxonomy": {"maths": ["algebra"]}})
    with pytest.raises(ValidationError, match="both 'math' and 'science'"):
        DomainTaxonomy(science=["physics", "calculus"])
    with pytest.raises(ValidationError, match="snake_case"):
        DomainTaxonomy(code=["Python Functions"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        DomainConfig.model_validate({"neighbours": 5})


# --- classify_frame and the stage ---------------------------------------------------------------

# kNN alone, every question given a domain however far its neighbours (the mechanics of the kNN path).
KNN = DomainConfig(classifier="metadata_then_knn", knn_min_similarity=-1.0)


def _questions(rows: list[tuple[str, str | None, str | None, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["question_id", "domain", "subdomain", "source", "text"], orient="row")


def test_classify_frame_uses_metadata_first_then_knn(classifier):
    q = _questions([("q1", "math", "Counting & Probability", "math", "How many ways can 5 people sit in a row?"),
                    ("q2", None, None, "web", "Write a python function to find the sum of a list of numbers."),
                    ("q3", "science", None, "scibench-quan", "Compute the energy of the 1s orbital."),
                    ("q4", "science", "Nonsense field", "other-pool", "Calculate the molar mass of glucose.")])
    calls = []
    out = classify_frame(q, KNN, lambda: calls.append(1) or classifier).sort("question_id")
    assert out["method"].to_list() == ["metadata", "knn", "metadata", "metadata"]
    assert out["domain"].to_list() == ["math", "code", "science", "science"]
    assert out["subdomain"].to_list() == ["counting_and_probability", "python_functions", "quantum_chemistry", None]
    assert out["confidence"][0] == 1.0 and out["version"].to_list() == [1, 3, 1, 1]
    assert "not in taxonomy" in out["detail"][3] and out["detail"][1].startswith("top similarity")
    assert calls == [1]
    # All metadata: the classifier factory is never called (no model load, no fit).
    classify_frame(q.filter(pl.col("domain").is_not_null()), KNN, lambda: pytest.fail("fitted"))
    # knn only: every row by kNN; metadata only: no pool domain means "other".
    assert set(classify_frame(q, KNN.model_copy(update={"classifier": "knn"}), classifier)["method"]) == {"knn"}
    meta = classify_frame(q, DomainConfig(classifier="metadata")).sort("question_id")
    assert meta["domain"][1] == "other" and meta["confidence"][1] is None


def test_classify_frame_flags_low_confidence_and_rejects_bad_input(classifier):
    q = _questions([("q1", None, None, "web", "Tell me about the weather on Mars and the history of jazz.")])
    everyone = KnnClassifier(k=20, embedder=classifier.embedder).fit(  # all 20 rows vote: no clear winner
        classifier.embeddings, classifier.domains.tolist(), classifier.subdomains.tolist())
    out = classify_frame(q, KNN, everyone)
    assert out["detail"][0].endswith("low confidence") and out["domain"][0] in {"math", "code", "logic", "science"}
    with pytest.raises(ValueError, match="need kNN but no classifier"):
        classify_frame(q, KNN)
    with pytest.raises(ValueError, match="no text"):
        classify_frame(_questions([("q9", "math", None, "math", " ")]), KNN, classifier)


def test_metadata_subdomain_maps_pool_names():
    tax = DomainTaxonomy()
    assert metadata_subdomain("math", "Intermediate Algebra", "math", tax) == "intermediate_algebra"
    assert metadata_subdomain("science", "Signal processing", "theoremqa", tax) == "eecs"
    assert metadata_subdomain("logic", None, "bigbench-penguins", tax) == "table_reasoning"
    assert metadata_subdomain("math", "number_theory", None, tax) == "number_theory"
    assert metadata_subdomain("code", "Algebra", "math", tax) is None  # never across domains


def test_stage_writes_each_question_once(tmp_path: Path, classifier):
    texts = {"q1": "What is 15% of 80?", "q2": "Write a function to return the n-th Fibonacci number.",
             "q3": "Today is 01/31/2020. What is the date one month later in MM/DD/YYYY?"}
    questions = question_frame(("q1", "math"), ("q2", "code"), ("q3", "logic")).with_columns(
        text=pl.col("question_id").replace_strict(texts),
        source=pl.when(pl.col("question_id") == "q1").then(pl.lit("gsm8k")).otherwise(pl.lit("scraped")))
    with Store(tmp_path / "x.duckdb") as store:
        store.insert("questions", questions)
        first = classify_questions(store, KNN, "run-1", ["q1", "q2", "q3"], classifier,
                                   metadata_sources={"gsm8k"})
        assert (first.metadata, first.knn, first.already_done) == (1, 2, 0)
        rows = store.frame("SELECT question_id, method, domain, subdomain, run_id FROM question_domains "
                           "ORDER BY question_id")
        assert rows.rows() == [("q1", "metadata", "math", "arithmetic_word_problems", "run-1"),
                               ("q2", "knn", "code", "python_functions", "run-1"),
                               ("q3", "knn", "logic", "date_understanding", "run-1")]
        second = classify_questions(store, KNN, "run-2", ["q1", "q2", "q3"],
                                    lambda: pytest.fail("nothing left to classify"), metadata_sources={"gsm8k"})
        assert (second.metadata, second.knn, second.already_done) == (0, 0, 3)
        assert store.count("question_domains") == 3
        # Another method is another row: knn for every question adds q1's kNN row only.
        third = classify_questions(store, KNN.model_copy(update={"classifier": "knn"}), "run-3", ["q1", "q2", "q3"], classifier)
        assert (third.knn, third.already_done) == (1, 2) and store.count("question_domains") == 4


def test_stage_treats_a_stored_other_as_no_metadata(tmp_path: Path, classifier):
    questions = question_frame(("q1", "other"), ("q2", "math")).with_columns(
        text=pl.Series(["Write a python function to sum a list.", "What is 2 + 3?"]))
    with Store(tmp_path / "x.duckdb") as store:
        store.insert("questions", questions)
        report = classify_questions(store, KNN, "run-1", ["q1", "q2"], classifier)
        assert (report.metadata, report.knn) == (1, 1)
        rows = store.frame("SELECT question_id, method, domain FROM question_domains ORDER BY question_id").rows()
        assert rows == [("q1", "knn", "code"), ("q2", "metadata", "math")]


def test_changed_settings_reclassify_and_adoption_follows(tmp_path: Path, classifier):
    """The domain stage is keyed by its settings' hash: a new k (or confidence cut, taxonomy, ...)
    classifies again and replaces the rows; an adopted domain follows the new answer, and goes
    back to "other" when that answer is no longer confident. Nothing is redone when nothing changed."""
    from pipeline.stages.domains import adopt_domains

    questions = question_frame(("q1", "other"), ("q2", "math")).with_columns(
        text=pl.Series(["Write a python function to sum a list.", "What is 2 + 3?"]))
    calls = []

    def counted():
        calls.append(1)
        return classifier

    with Store(tmp_path / "x.duckdb") as store:
        store.insert("questions", questions)

        def stage(cfg: DomainConfig, run: str, make=counted):
            report = classify_questions(store, cfg, run, ["q1", "q2"], make)
            return report, adopt_domains(store, ["q1", "q2"], cfg.min_confidence)

        def state():
            return store.frame("""SELECT q.question_id, q.domain, d.method, d.adopted, d.run_id FROM questions q
                                  JOIN question_domains d USING (question_id) ORDER BY ALL""").rows()

        report, adopted = stage(KNN, "run-1")
        assert (report.knn, report.metadata, adopted, len(calls)) == (1, 1, 1, 1)
        assert state() == [("q1", "code", "knn", True, "run-1"), ("q2", "math", "metadata", False, "run-1")]
        # Same settings: nothing classified, nothing adopted again; q1 still counts as undeclared.
        report, adopted = stage(KNN, "run-2")
        assert (report.knn, report.metadata, report.already_done, adopted, len(calls)) == (0, 0, 2, 0, 1)
        # A new k: q1's kNN row is redone (q2's metadata row does not depend on k) and stays adopted.
        report, adopted = stage(KNN.model_copy(update={"k": 2}), "run-3")
        assert (report.knn, report.metadata, adopted, len(calls)) == (1, 0, 0, 2)
        assert state() == [("q1", "code", "knn", True, "run-3"), ("q2", "math", "metadata", False, "run-1")]
        # Another confidence cut: redone, by a classifier (a stand-in whose every neighbour is
        # "other") that now says "other": the adopted domain goes back to "other".
        knows_nothing = KnnClassifier(k=2, embedder=classifier.embedder).fit(
            classifier.embeddings, ["other"] * len(classifier.domains), [None] * len(classifier.domains))
        report, adopted = stage(KNN.model_copy(update={"k": 2, "min_confidence": 0.9}), "run-4", lambda: knows_nothing)
        assert (report.knn, adopted) == (1, 1)
        assert state() == [("q1", "other", "knn", False, "run-4"), ("q2", "math", "metadata", False, "run-1")]


# --- zero-shot and combined ---------------------------------------------------------------------


class FakeDomainJudgeForOrchestrationTest:
    """Combined-classifier orchestration test only: answers the zero-shot domain request from a
    script keyed by a word of the question, with a log probability per domain for the confidence."""

    model_name = "fake-domain-judge"

    def __init__(self, script: dict[str, str]):
        self.script, self.asked = script, []

    def chat(self, requests, on_progress=None):
        import math

        from schemas.chat import ChatResult, Completion

        out = []
        for req in requests:
            question = req.messages[1]["content"]
            self.asked.append(question)
            domain = next(d for word, d in self.script.items() if word in question)
            assert domain in req.choice
            steps = [{domain: math.log(0.8), "science" if domain != "science" else "logic": math.log(0.2)}]
            out.append(ChatResult([Completion(domain, "stop", 1, top_logprobs=steps)], 90))
        return out


def test_knn_alone_calls_a_question_like_no_labelled_pool_other(classifier):
    q = _questions([("q1", None, None, "web", "Which treaty ended the First World War and imposed reparations?"),
                    ("q2", None, None, "web", "Write a python function to find the sum of a list of numbers.")])
    out = classify_frame(q, KNN.model_copy(update={"knn_min_similarity": 0.35}), classifier).sort("question_id")
    assert out["domain"].to_list() == ["other", "code"]
    assert "like no labelled pool" in out["detail"][0] and out["subdomain"][0] is None


def test_combined_asks_the_model_only_where_knn_is_not_close(tmp_path: Path, classifier):
    texts = {"q1": "Write a python function to count the vowels in a string.",  # a labelled (MBPP-like) text
             "q2": "Which treaty ended the First World War and imposed reparations on Germany?",
             "q3": "What does the Python expression sorted('banana') return?"}
    questions = question_frame(("q1", "other"), ("q2", "other"), ("q3", "other")).with_columns(
        text=pl.col("question_id").replace_strict(texts))
    judge = FakeDomainJudgeForOrchestrationTest({"treaty": "other", "sorted": "code"})
    cfg = DomainConfig(classifier="metadata_then_combined", knn_trust_similarity=0.6)
    with Store(tmp_path / "x.duckdb") as store:
        store.insert("questions", questions)
        from pipeline.domain_classifier.zero_shot import ZeroShotClassifier
        from pipeline.stages.domains import adopt_domains

        report = classify_questions(store, cfg, "run-1", list(texts), classifier,
                                    zero_shot=lambda: ZeroShotClassifier(judge, cfg.descriptions), model=judge.model_name)
        adopted = adopt_domains(store, list(texts), cfg.min_confidence, "combined")
        assert (report.knn, report.zero_shot, report.other) == (3, 2, 1)
        assert [t for t in judge.asked if "vowels" in t] == []  # q1 is a labelled text: no model call
        rows = store.frame("SELECT question_id, method, domain, round(confidence, 2) AS c, detail FROM question_domains "
                           "WHERE method = 'combined' ORDER BY question_id").rows()
        assert [(q, d, c) for q, _, d, c, _ in rows] == [("q1", "code", 1.0), ("q2", "other", 0.8), ("q3", "code", 0.8)]
        assert rows[0][4].startswith("kNN: top similarity") and "zero-shot by fake-domain-judge" in rows[1][4]
        assert "kNN said" in rows[2][4]
        assert adopted == 2  # q1 and q3 take code; q2 stays other
        assert store.frame("SELECT question_id, domain FROM questions ORDER BY 1").rows() == [
            ("q1", "code"), ("q2", "other"), ("q3", "code")]
        # Same settings and model: nothing asked again. Another judge model: the model's rows are redone.
        before = len(judge.asked)
        again = classify_questions(store, cfg, "run-2", list(texts), classifier,
                                   zero_shot=lambda: ZeroShotClassifier(judge, cfg.descriptions), model=judge.model_name)
        assert again.already_done == 3 and len(judge.asked) == before
        other = classify_questions(store, cfg, "run-3", list(texts), classifier,
                                   zero_shot=lambda: ZeroShotClassifier(judge, cfg.descriptions), model="another")
        assert other.zero_shot == 2 and other.already_done == 0


def test_zero_shot_alone_needs_an_engine(classifier):
    q = _questions([("q1", None, None, "web", "Which treaty ended the First World War?")])
    with pytest.raises(ValueError, match="need the zero-shot domain rule but no engine"):
        classify_frame(q, DomainConfig(classifier="zero_shot"), classifier)

"""The domain taxonomy and the domain classifier's settings (pipeline/domains)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.question import DOMAINS

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class DomainTaxonomy(BaseModel):
    """Top-level domain -> its sub-domains. The defaults are what the labelled texts carry
    (pipeline/domain_classifier/labelled.py maps MATH subjects, TheoremQA fields, SciBench textbooks,
    BIG-bench tasks, MBPP and GSM8K onto these names; data/labels/domains_train.jsonl carries the rest)."""

    model_config = ConfigDict(extra="forbid")

    math: list[str] = ["algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                       "number_theory", "prealgebra", "precalculus", "calculus", "analysis", "statistics",
                       "differential_equations", "arithmetic_word_problems", "abstract_algebra", "linear_algebra",
                       "topology"]
    code: list[str] = ["python_functions", "algorithms", "python_snippets", "web_development", "python_programs",
                       "computer_science"]
    science: list[str] = ["physics", "chemistry", "quantum_chemistry", "thermodynamics", "eecs", "finance",
                          "general_science", "biology"]
    logic: list[str] = ["navigation", "causal_judgment", "date_understanding", "logical_deduction",
                        "object_counting", "table_reasoning", "tracking_objects", "formal_fallacies",
                        "truth_tellers", "boolean_expressions", "temporal_sequences", "first_order_logic",
                        "propositional_logic", "nonmonotonic_reasoning"]
    other: list[str] = ["history", "geography", "literature", "religion", "humanities", "people", "sports",
                        "entertainment", "law", "economics", "politics", "education", "business"]

    @model_validator(mode="before")
    @classmethod
    def _known_domains(cls, data):
        # Say which names are allowed instead of pydantic's bare "extra inputs not permitted".
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(DOMAINS))
            if unknown:
                raise ValueError(f"unknown top-level domain(s) {unknown}; the taxonomy's domains are {list(DOMAINS)}")
        return data

    @model_validator(mode="after")
    def _unique_names(self):
        seen: dict[str, str] = {}
        for domain, subs in self.items():
            for sub in subs:
                if not _NAME.match(sub):
                    raise ValueError(f"sub-domain {sub!r} of {domain!r} must be snake_case (a-z, 0-9, _)")
                if sub in seen:
                    # Each sub-domain names one domain, so a kNN neighbour's label is unambiguous.
                    raise ValueError(f"sub-domain {sub!r} is listed under both {seen[sub]!r} and {domain!r}")
                seen[sub] = domain
        return self

    def items(self) -> list[tuple[str, list[str]]]:
        return [(d, getattr(self, d)) for d in DOMAINS]

    def has(self, domain: str | None, subdomain: str | None = None) -> bool:
        if domain not in DOMAINS:
            return False
        return subdomain is None or subdomain in getattr(self, domain)


# What each top-level domain covers, in words a model can apply to a question from any source
# (pipeline/domain_classifier/zero_shot.py). "other" is described too: a question about history or law
# must have somewhere to go.
DEFAULT_DESCRIPTIONS = {
    "math": "mathematics: arithmetic and word problems, algebra, geometry, trigonometry, number theory, "
            "combinatorics, probability, statistics, calculus, linear and abstract algebra, proofs.",
    "code": "programming and computer science: writing, reading, testing or debugging code, what a program "
            "prints or returns, algorithms and data structures, complexity, computer architecture, operating "
            "systems, databases, networks, software engineering.",
    "science": "natural sciences and engineering: physics, chemistry, biology, astronomy, earth science, "
               "electrical engineering and signals, and quantitative finance calculations.",
    "logic": "logical reasoning: formal logic (propositions, validity, fallacies), arguments (assumptions, "
             "flaws, strengthen or weaken), deduction puzzles (ordering, seating, scheduling, assignments), "
             "tracking objects, dates, directions, causal judgment.",
    "other": "anything else: history, geography, politics, law, economics, philosophy, religion, literature, "
             "language, arts, business and marketing, everyday facts, trivia, opinions.",
}

# Worked examples shown to the zero-shot classifier after the descriptions (hand-written, from no
# pool or test set): the 1.5B default model sent history, law and economics questions to logic and
# science, and computer-science multiple choice to math, with the descriptions alone.
DEFAULT_EXAMPLES: list[tuple[str, str]] = [
    ("Which empire built Machu Picchu?\nA) Aztec\nB) Inca\nC) Maya\nD) Olmec", "other"),
    ("Under the doctrine of precedent, which courts are bound by a supreme court's decision?", "other"),
    ("If a central bank raises interest rates, what usually happens to household borrowing?", "other"),
    ("Is it true that cracking your knuckles causes arthritis?", "other"),
    ("Which of these makes a hash table lookup degrade to O(n)?\nA) Many collisions\nB) A prime table size\n"
     "C) A load factor of 0.5\nD) Open addressing", "code"),
    ("What does this print?\nx = [1, 2, 3]\nprint(x[-1] * 2)", "code"),
    ("Which layer of the OSI model routes packets between networks?", "code"),
    ("A 2 kg ball is dropped from 5 m. How fast is it moving just before it hits the ground?", "science"),
    ("Which organelle produces most of a cell's ATP?", "science"),
    ("All poets are dreamers. Some dreamers are engineers. Which conclusion must be true?", "logic"),
    ("What is the probability of rolling two sixes with two fair dice?", "math"),
    ("Solve for x: 3x + 7 = 22.", "math"),
]


class DomainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxonomy: DomainTaxonomy = DomainTaxonomy()
    # One sentence per top-level domain for the zero-shot classifier (every domain of DOMAINS).
    descriptions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DESCRIPTIONS))
    # (question, domain) pairs shown to the zero-shot classifier after the descriptions; [] for none.
    examples: list[tuple[str, str]] = Field(default_factory=lambda: list(DEFAULT_EXAMPLES))
    # How a question whose pool declares no domain is classified (metadata_then_*: the pool's domain
    # when it declares one; the bare names classify every question):
    #   knn        cosine kNN over the labelled texts (fast)
    #   zero_shot  the engine's model reads the descriptions below and names a domain (other included)
    #   combined   kNN where a labelled question is very close (knn_trust_similarity), zero-shot elsewhere
    # metadata: the pool's domain only ("other" when there is none).
    # Default kNN: on 509 questions from unseen sources (README, "Domains on unseen sources") kNN 3
    # scores 0.750 in ~21 s per 1,000; the zero-shot rule on the 1.5B default 0.615 in ~5,400 s, and
    # combined trusts kNN on 0.2% of such questions, so it scores as zero-shot does.
    classifier: Literal["metadata_then_combined", "metadata_then_zero_shot", "metadata_then_knn", "combined",
                        "zero_shot", "knn", "metadata"] = "metadata_then_knn"
    # Neighbours voting (cosine similarity weighted), each domain's votes divided by its share of the
    # labelled rows (knn_balanced: math, with many sub-domains, would otherwise outvote the rest).
    # Chosen on bench/domains_loso.py (fit without a source, classify it; mean over the 39 sources):
    # k 20 with balancing 0.732, without 0.706; k 5 0.712 and 0.692 (cap 250). The held-out split of
    # the pools (bench/domain_classifier.py) preferred k 5, but its test rows come from the training sources.
    k: int = Field(20, ge=1)
    knn_balanced: bool = True
    # A kNN answer whose winning vote share is below this keeps its domain but is flagged
    # ("low confidence" in detail): mapping it to "other" would drop it from rebalancing
    # targets, and the confidence column already lets a query filter it out.
    min_confidence: float = Field(0.6, ge=0.0, le=1.0)
    # kNN alone: a question whose nearest labelled text is less similar than this is "other" (it looks
    # like no labelled text). 0.35 was set when no labelled text was `other`; with `other` labelled
    # (data/labels/domains_train.jsonl) the cut barely matters on bench/domains_loso.py (0.25: 0.732,
    # 0: 0.734, 0.35: 0.711), so it stays low, for text like nothing at all.
    # combined: kNN decides only where the nearest labelled text is at least knn_trust_similarity
    # similar (and its vote is confident); the zero-shot rule elsewhere. Leave-one-source-out, kNN
    # would decide 0.2% of the rows at 0.8 and be right on 0.96 of them (at 0.6: 9.3%, right on 0.87).
    knn_min_similarity: float = Field(0.25, ge=-1.0, le=1.0)
    knn_trust_similarity: float = Field(0.8, ge=-1.0, le=1.0)
    # Labelled examples embedded per sub-domain (seeded, nested sample): 250 gives about 9,800
    # texts, about 3 min to embed on 2 idle cores (55-70 texts/s; 15-20/s when vLLM shares them);
    # on bench/domains_loso.py 250 beats 500 (0.732 against 0.722 at k 20): fewer rows of the big pools.
    max_per_subdomain: int = Field(250, ge=1)
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # bench/domain_classifier.py
    seed: int = 0

    @property
    def method(self) -> str:
        """The method for questions whose pool declares no domain: knn | zero_shot | combined | metadata."""
        return self.classifier.removeprefix("metadata_then_")

    @property
    def uses_metadata(self) -> bool:
        return self.classifier == "metadata" or self.classifier.startswith("metadata_then_")

    @model_validator(mode="after")
    def _every_domain_described(self):
        if set(self.descriptions) != set(DOMAINS) or not all(t.strip() for t in self.descriptions.values()):
            raise ValueError(f"descriptions: one non-empty text per domain {list(DOMAINS)} "
                             f"(got {sorted(self.descriptions)})")
        unknown = sorted({d for _, d in self.examples} - set(DOMAINS))
        if unknown:
            raise ValueError(f"examples: unknown domain(s) {unknown}; known: {list(DOMAINS)}")
        return self

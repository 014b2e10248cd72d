"""Which answer style, placement, length band, prompt perturbation and reasoning container each
sample gets.

Coverage objective: within each domain, styles are dealt in proportion to their weights by
largest deficit (the style furthest below its target share goes next), so any prefix of a
domain's samples is balanced to within about one sample per style. Exclusions (by domain and
answer type) take styles out for a question; the n samples of one question get different
styles while enough are allowed. Pure and deterministic: the same questions, config and seed
give the same plan, whatever order the questions come in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.hashing import seed_from
from schemas.config import SynthesisConfig
from schemas.perturbation import Perturbation


@dataclass(frozen=True)
class FormatChoice:
    style: str
    placement: str | None  # None for fixed-layout styles (json_object, terse_final)
    length_band: str | None
    perturbation: Perturbation
    reasoning_container: str = "think_tags"  # think_tags | reasoning_field (in the exported record)


class _Balancer:
    """Deals names in proportion to weights by largest deficit; ties broken by a seeded hash."""

    def __init__(self, weights: dict[str, float]):
        total = sum(weights.values())
        self.share = {k: w / total for k, w in weights.items()}
        self.count = dict.fromkeys(weights, 0)
        self.dealt = 0

    def pick(self, candidates: list[str], *tiebreak) -> str:
        best = max(candidates, key=lambda k: (self.share[k] * (self.dealt + 1) - self.count[k],
                                              seed_from("tiebreak", *tiebreak, k)))
        self.count[best] += 1
        self.dealt += 1
        return best


def allowed_styles(cfg: SynthesisConfig, domain: str, answer_type: str | None) -> list[str]:
    weights = cfg.mix.weights.get(domain, {})
    excluded = {s for e in cfg.mix.exclusions
                if (e.domains is None or domain in e.domains)
                and (e.answer_types is None or answer_type in e.answer_types) for s in e.styles}
    return [s for s in cfg.formats if weights.get(s, 1.0) > 0 and s not in excluded]


def plan_formats(questions: Iterable[tuple[str, str, str | None]], cfg: SynthesisConfig,
                 n_system_prompts: int) -> dict[tuple[str, int], FormatChoice]:
    """questions: (question_id, domain, answer_type). Returns a choice per (question_id, index)."""
    catalog = cfg.catalog()
    by_domain: dict[str, list[tuple[str, str | None]]] = {}
    for qid, domain, answer_type in questions:
        by_domain.setdefault(domain, []).append((qid, answer_type))
    plan = {}
    for domain, members in sorted(by_domain.items()):
        weights = cfg.mix.weights.get(domain, {})
        styles = _Balancer({s: weights.get(s, 1.0) for s in cfg.formats if weights.get(s, 1.0) > 0})
        placements = _Balancer({k: w for k, w in cfg.mix.placements.items() if w > 0})
        bands = _Balancer({k: w for k, w in cfg.mix.length_bands.items() if w > 0})
        containers = _Balancer({k: w for k, w in cfg.mix.reasoning_containers.items() if w > 0})
        for qid, answer_type in sorted(members, key=lambda m: seed_from("order", cfg.seed, m[0])):
            allowed = allowed_styles(cfg, domain, answer_type)
            if not allowed:
                raise ValueError(f"no answer format is allowed for domain {domain!r}, answer type {answer_type!r} "
                                 f"(synthesis.formats, mix.weights and mix.exclusions leave none)")
            used: list[str] = []
            for i in range(cfg.n):
                style = styles.pick([s for s in allowed if s not in used] or allowed, cfg.seed, qid, i)
                used.append(style)
                free = not catalog[style].fixed_layout
                plan[(qid, i)] = FormatChoice(
                    style=style,
                    placement=placements.pick(list(placements.share), cfg.seed, qid, i) if free else None,
                    length_band=bands.pick(list(bands.share), cfg.seed, qid, i) if free else None,
                    perturbation=Perturbation.draw(seed_from("perturbation", cfg.seed, qid, i),
                                                   cfg.perturbation, n_system_prompts),
                    reasoning_container=containers.pick(list(containers.share), cfg.seed, qid, i),
                )
    return plan

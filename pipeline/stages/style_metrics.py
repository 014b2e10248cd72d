"""Style metrics of a run: the distribution of realized answer styles per domain, its
normalized entropy, the dominant style's share with the overfit alarm (both over answers
in a recognized style), and compliance per
requested style and per model. Written to style_metrics / style_summary / style_compliance.

Scope `synthesized` covers the run's questions' samples under the current generation config;
`kept` the part of them that survived every verdict (kept_samples). The realized style is
re-detected here, so the figures follow the current detectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from filters.text.format_detect import UNKNOWN, StyleDetector
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store
from schemas.config import SynthesisConfig


@dataclass
class StyleReport:
    samples: int
    compliance: float | None
    alarms: list[str] = field(default_factory=list)  # "scope/domain: style 83% of 40"


def normalized_entropy(counts: list[int]) -> float | None:
    """Shannon entropy over the categories present, divided by its maximum (log of their number).
    1.0 is an even spread; 0.0 one category. None with fewer than two categories' room."""
    total = sum(counts)
    k = sum(1 for c in counts if c > 0)
    if total == 0 or k < 2:
        return 0.0 if total else None
    h = -sum(c / total * math.log(c / total) for c in counts if c > 0)
    return h / math.log(k)


def _samples(store: Store, question_ids: list[str], gen_hash: str, detector: StyleDetector) -> pl.DataFrame:
    frame = store.frame("""
        SELECT s.sample_id, q.domain, s.model, s.requested_format AS requested, s.answer,
               s.sample_id IN (SELECT sample_id FROM kept_samples) AS kept
        FROM samples s JOIN questions q USING (question_id)
        WHERE s.gen_config_hash = ? AND s.question_id IN (SELECT question_id FROM probe)
    """, [gen_hash], probe=pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String}))
    rows = frame.select("requested", "answer").rows()
    return frame.with_columns(
        realized=pl.Series([detector.realized(a) for _, a in rows], dtype=pl.String),
        compliant=pl.Series([r not in detector.detectors or detector.matches(r, a) for r, a in rows],
                            dtype=pl.Boolean),
    )


def _by_style(part: pl.DataFrame) -> pl.DataFrame:
    requested = part.group_by(style="requested").agg(requested=pl.len(), compliant=pl.col("compliant").sum())
    realized = part.group_by(style="realized").agg(realized=pl.len())
    return (requested.join(realized, on="style", how="full", coalesce=True)
            .with_columns(pl.col("requested", "realized", "compliant").fill_null(0).cast(pl.Int32)))


def compute(frame: pl.DataFrame, run_id: str, alarm_share: float, alarm_min: int) -> dict[str, pl.DataFrame]:
    """frame: domain, model, requested, realized, compliant, kept. Pure: the tables' rows."""
    metrics, summary = [], []
    scopes = {"synthesized": frame, "kept": frame.filter(pl.col("kept"))}
    for scope, part in scopes.items():
        groups = [("all", part)] + [(d, part.filter(pl.col("domain") == d)) for d in sorted(part["domain"].unique())]
        for domain, g in groups:
            styles = _by_style(g).sort("style")
            metrics.append(styles.with_columns(run_id=pl.lit(run_id), scope=pl.lit(scope), domain=pl.lit(domain)))
            # "unknown" (no detector recognized the answer) is a compliance failure, not a style a
            # model can overfit to: diversity and the alarm count recognized styles only.
            known = styles.filter((pl.col("style") != UNKNOWN) & (pl.col("realized") > 0))
            n_known = int(known["realized"].sum())
            top = known.sort(["realized", "style"], descending=[True, False]).row(0, named=True) if n_known else None
            share = top["realized"] / n_known if top else None
            summary.append({
                "run_id": run_id, "scope": scope, "domain": domain, "n_samples": g.height,
                "n_unknown": g.height - n_known, "n_styles": known.height,
                "entropy": normalized_entropy(known["realized"].to_list()),
                "dominant_style": top["style"] if top else None, "dominant_share": share,
                "alarm": bool(n_known >= alarm_min and share is not None and share > alarm_share),
                "alarm_share": alarm_share, "compliance": float(g["compliant"].mean()) if g.height else None,
            })
    compliance = (frame.group_by("model", style="requested")
                  .agg(requested=pl.len(), compliant=pl.col("compliant").sum())
                  .with_columns(rate=pl.col("compliant") / pl.col("requested"), run_id=pl.lit(run_id)))
    return {
        "style_metrics": pl.concat(metrics) if metrics else pl.DataFrame(),
        "style_summary": pl.DataFrame(summary),
        "style_compliance": compliance,
    }


def record_style_metrics(store: Store, cfg: SynthesisConfig, run_id: str, question_ids: list[str],
                         gen_hash: str) -> StyleReport:
    detector = StyleDetector(cfg.custom_patterns())
    frame = _samples(store, question_ids, gen_hash, detector)
    tables = compute(frame, run_id, cfg.mix.alarm_share, cfg.mix.alarm_min_samples)
    store.replace_many(tables)
    alarms = [f"{r['scope']}/{r['domain']}: {r['dominant_style']} {r['dominant_share']:.0%} of {r['n_samples']}"
              for r in tables["style_summary"].iter_rows(named=True) if r["alarm"]]
    return StyleReport(samples=frame.height,
                       compliance=float(frame["compliant"].mean()) if frame.height else None, alarms=alarms)


def run(ctx: StageContext) -> StageReport:
    """Requested vs realized answer styles of the run's samples (those of its generation config)."""
    from pipeline.stages.synthesize import gen_config_hash

    cfg = ctx.config.synthesis
    report = record_style_metrics(ctx.store, cfg, ctx.run_id, ctx.question_ids(),
                                  gen_config_hash(cfg, ctx.config.engine.model))
    return StageReport(vars(report), [f"[styles] overfit alarm: {a} (SELECT * FROM style_alarms)"
                                      for a in report.alarms])

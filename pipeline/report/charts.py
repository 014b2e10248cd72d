"""One Altair chart per report query (pipeline/report/queries.py), keyed alike. A chart gets its
query's rows as they are; it draws them, it does not compute numbers of its own."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import polars as pl

WIDTH = 560


def _funnel(df: pl.DataFrame) -> alt.TopLevelMixin:
    order = df.sort(["step_no", "step"])["step"].unique(maintain_order=True).to_list()
    base = alt.Chart(df).encode(
        y=alt.Y("step:N", sort=order, title=None),
        x=alt.X("n:Q", scale=alt.Scale(type="symlog"), title="questions / samples (symlog)"),
        tooltip=["domain", "step", "unit", "n"])
    bars = base.mark_bar().encode(color=alt.Color("unit:N", title="unit"))
    labels = base.mark_text(align="left", dx=3).encode(text="n:Q")
    return alt.layer(bars, labels).properties(width=WIDTH // 2, height=alt.Step(14)).facet(
        facet=alt.Facet("domain:N", title=None), columns=2)


def _rule_failures(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(
        x=alt.X("run_id:O", title="run"), y=alt.Y("rule:N", title=None),
        tooltip=["run_id", "stage", "rule", "checked", "failed", alt.Tooltip("fail_rate:Q", format=".1%")])
    cells = base.mark_rect().encode(color=alt.Color("fail_rate:Q", title="failure rate",
                                                    scale=alt.Scale(scheme="orangered", domain=[0, 1])))
    text = base.mark_text(fontSize=10).encode(text=alt.Text("fail_rate:Q", format=".0%"))
    return alt.layer(cells, text).properties(width=alt.Step(90), height=alt.Step(18))


def _rule_reasons(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=420)),
        x=alt.X("n:Q", title="failing verdicts"), color=alt.Color("rule:N", legend=None),
        row=alt.Row("rule:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["rule", "reason", "n"],
    ).properties(width=WIDTH // 2).resolve_scale(y="independent")


def _styles(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).transform_fold(["requested", "realized", "compliant"], as_=["count", "samples"]).mark_bar().encode(
        x=alt.X("style:N", title=None), xOffset=alt.XOffset("count:N", sort=["requested", "realized", "compliant"]),
        y=alt.Y("samples:Q", title="samples"), color=alt.Color("count:N", sort=["requested", "realized", "compliant"]),
        tooltip=["style", "requested", "realized", "compliant"],
    ).properties(width=WIDTH)


def _style_compliance(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(x=alt.X("style:N", title="requested style"), y=alt.Y("model:N", title=None),
                                tooltip=["model", "style", "requested", "compliant", alt.Tooltip("rate:Q", format=".0%")])
    cells = base.mark_rect().encode(color=alt.Color("rate:Q", title="compliance", scale=alt.Scale(domain=[0, 1])))
    text = base.mark_text(fontSize=10).encode(text=alt.Text("rate:Q", format=".0%"))
    return alt.layer(cells, text).properties(width=alt.Step(80), height=alt.Step(24))


def _style_alarm(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(y=alt.Y("domain:N", title=None))
    bars = base.mark_bar().encode(
        x=alt.X("dominant_share:Q", title="share of the dominant style", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("alarm:N", title="alarm", scale=alt.Scale(domain=[False, True], range=["#4c78a8", "#e45756"])),
        tooltip=["scope", "domain", "n_samples", "dominant_style", alt.Tooltip("dominant_share:Q", format=".0%"),
                 "alarm_share", "alarm", alt.Tooltip("compliance:Q", format=".0%")])
    limit = base.mark_tick(color="black", thickness=2).encode(x="alarm_share:Q")
    return alt.layer(bars, limit).properties(width=WIDTH // 2, height=alt.Step(18)).facet(
        column=alt.Column("scope:N", title=None))


def _difficulty_hist(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("bin:O", title="difficulty (bin start)"), y=alt.Y("n:Q", title="questions", stack=True),
        color="domain:N", tooltip=["method", "domain", "bin", "n"],
    ).properties(width=WIDTH // 3, height=160).facet(column=alt.Column("method:N", title="signal"))


def _difficulty_levels(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("pearson_r:Q", title="Pearson r (signal vs reference level)", scale=alt.Scale(domain=[-1, 1])),
        y=alt.Y("method:N", title=None), color="domain:N", yOffset="domain:N",
        tooltip=["method", "domain", "n", alt.Tooltip("pearson_r:Q", format=".3f")],
    ).properties(width=WIDTH)


def _difficulty_scatter(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_circle(size=14, opacity=0.5).encode(
        x=alt.X("level:Q", title="reference level (0..1)"), y=alt.Y("score:Q", title="difficulty"),
        color="domain:N", tooltip=["method", "domain", "score", "level"],
    ).properties(width=WIDTH // 3, height=180).facet(column=alt.Column("method:N", title="signal"))


def _domain_mix(df: pl.DataFrame) -> alt.TopLevelMixin:
    order = ["pool", "synthesized", "kept", "exported", "target"]
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("domain:N", title=None), xOffset=alt.XOffset("stage:N", sort=order),
        y=alt.Y("share:Q", title="share of the stage", axis=alt.Axis(format="%")),
        color=alt.Color("stage:N", sort=order),
        tooltip=["domain", "stage", "n", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=WIDTH)


def _judge_scores(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("score:O", title="score"), y=alt.Y("n:Q", title="verdicts"),
        color=alt.Color("passed:N", scale=alt.Scale(domain=[False, True], range=["#e45756", "#54a24b"])),
        tooltip=["rule", "score", "passed", "n"],
    ).properties(width=WIDTH // 3, height=160).facet(column=alt.Column("rule:N", title=None))


def _judge_costs(df: pl.DataFrame) -> alt.TopLevelMixin:
    tokens = alt.Chart(df).transform_fold(["prompt_tokens", "completion_tokens"], as_=["kind", "tokens"]).mark_bar().encode(
        y=alt.Y("rule:N", title=None), x=alt.X("tokens:Q", title="tokens"), color=alt.Color("kind:N", title=None),
        tooltip=["rule", "judged", "errors", "skipped_budget", "prompt_tokens", "completion_tokens"],
    ).properties(width=WIDTH // 2, title="tokens")
    counts = alt.Chart(df).transform_fold(["judged", "errors", "skipped_budget"], as_=["kind", "verdicts"]).mark_bar().encode(
        y=alt.Y("rule:N", title=None), x=alt.X("verdicts:Q", title="samples"),
        yOffset=alt.YOffset("kind:N"), color=alt.Color("kind:N", title=None, scale=alt.Scale(scheme="set2")),
        tooltip=["rule", "judged", "errors", "skipped_budget"],
    ).properties(width=WIDTH // 2, title="verdicts, errors, budget skips")
    return alt.hconcat(counts, tokens).resolve_scale(color="independent")


def _judge_evals(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).transform_fold(["ties", "errors"], as_=["kind", "items"]).mark_bar().encode(
        y=alt.Y("rule:N", title=None), x=alt.X("items:Q", title="items of the labelled set"),
        yOffset="kind:N", color=alt.Color("kind:N", title=None),
        tooltip=["rule", "rule_version", "mode", "n_items", "ties", "errors", alt.Tooltip("agreement:Q", format=".2f")],
    ).properties(width=WIDTH)


def _lengths(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).transform_calculate(chars="pow(2, datum.bin) - 1").mark_bar().encode(
        x=alt.X("bin:O", title="length bin b: 2^b - 1 .. 2^(b+1) - 2 characters"),
        xOffset=alt.XOffset("kept:N"), y=alt.Y("n:Q", title="samples"),
        color=alt.Color("kept:N", scale=alt.Scale(domain=[False, True], range=["#e45756", "#54a24b"])),
        tooltip=["field", "kept", "bin", alt.Tooltip("chars:Q", title="from chars"), "n"],
    ).properties(width=WIDTH // 2, height=180).facet(column=alt.Column("field:N", title=None))


def _agentic_outcomes(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("environment:N", title=None), x=alt.X("n:Q", title="trajectories", stack=True),
        color=alt.Color("outcome:N", title="outcome"), tooltip=["environment", "outcome", "n"],
    ).properties(width=WIDTH, height=alt.Step(22))


def _agentic_pass_rate(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(
        y=alt.Y("environment:N", title=None),
        tooltip=["environment", "trajectories", "verified", "passed", alt.Tooltip("pass_rate:Q", format=".0%"),
                 "tasks", "tasks_solved"])
    bars = base.mark_bar().encode(x=alt.X("pass_rate:Q", title="pass rate of the verified trajectories",
                                          scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")))
    text = base.transform_calculate(label="datum.passed + ' / ' + datum.verified + ' (tasks solved ' + "
                                          "datum.tasks_solved + ' / ' + datum.tasks + ')'").mark_text(
        align="left", dx=4).encode(x=alt.X("pass_rate:Q"), text="label:N")
    return alt.layer(bars, text).properties(width=WIDTH // 2, height=alt.Step(22))


def _agentic_rule_failures(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(
        y=alt.Y("rule:N", title=None, sort=alt.EncodingSortField("stage")),
        tooltip=["stage", "rule", "checked", "failed", alt.Tooltip("fail_rate:Q", format=".0%")])
    bars = base.mark_bar().encode(x=alt.X("failed:Q", title="failed verdicts"),
                                  color=alt.Color("stage:N", legend=alt.Legend(orient="bottom")))
    text = base.transform_calculate(label="datum.failed + ' of ' + datum.checked").mark_text(
        align="left", dx=3).encode(x="failed:Q", text="label:N")
    return alt.layer(bars, text).properties(width=WIDTH // 2, height=alt.Step(18))


def _agentic_perturbation_alarm(df: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(df).encode(
        y=alt.Y("axis:N", title=None),
        tooltip=["axis", "n_trajectories", "n_values", "n_configured", "missing", "covered",
                 alt.Tooltip("entropy:Q", format=".2f"), "dominant_value",
                 alt.Tooltip("dominant_share:Q", format=".0%"), alt.Tooltip("alarm_threshold:Q", format=".0%"),
                 "alarm"])
    bars = base.mark_bar().encode(
        x=alt.X("dominant_share:Q", title="share of the dominant value", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("alarm:N", title="alarm", scale=alt.Scale(domain=[False, True], range=["#4c78a8", "#e45756"]),
                        legend=alt.Legend(orient="bottom")))
    limit = base.mark_tick(color="black", thickness=2).encode(x="alarm_threshold:Q")
    text = base.transform_calculate(
        label="datum.n_values + ' values' + (datum.covered === false ? ', never drew ' + datum.missing : '')"
    ).mark_text(align="left", x=WIDTH // 2 + 6).encode(text="label:N")
    return alt.layer(bars, limit, text).properties(width=WIDTH // 2, height=alt.Step(20))


def _agentic_perturbation_values(df: pl.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("value:N", title=None, axis=alt.Axis(labelLimit=300)), x=alt.X("n:Q", title="trajectories"),
        color=alt.Color("configured:N", title="configured",
                        legend=alt.Legend(orient="bottom")),
        row=alt.Row("axis:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["axis", "value", "n", alt.Tooltip("share:Q", format=".0%"), "configured",
                 alt.Tooltip("expected_share:Q", format=".0%")],
    ).properties(width=WIDTH // 2).resolve_scale(y="independent")


CHARTS: dict[str, Callable[[pl.DataFrame], alt.TopLevelMixin]] = {
    "funnel": _funnel, "rule_failures": _rule_failures, "rule_reasons": _rule_reasons,
    "style_requested_realized": _styles, "style_compliance": _style_compliance, "style_alarm": _style_alarm,
    "difficulty_hist": _difficulty_hist, "difficulty_levels": _difficulty_levels,
    "difficulty_scatter": _difficulty_scatter, "domain_mix": _domain_mix, "judge_scores": _judge_scores,
    "judge_costs": _judge_costs, "judge_evals": _judge_evals, "lengths": _lengths,
    "agentic_outcomes": _agentic_outcomes, "agentic_pass_rate": _agentic_pass_rate,
    "agentic_rule_failures": _agentic_rule_failures, "agentic_perturbation_alarm": _agentic_perturbation_alarm,
    "agentic_perturbation_values": _agentic_perturbation_values,
}


def spec(key: str, frame: pl.DataFrame) -> dict:
    """The chart's Vega-Lite spec with its rows inlined (datasets), ready for vega-embed."""
    return CHARTS[key](frame).to_dict()

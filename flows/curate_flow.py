"""The curate flows: one Prefect flow per stage group, and the full `curate` flow that runs them in order.

    curate = synthesize (ingest -> screen-questions -> classify-domains -> synthesize)
             -> agentic (agentic-rollouts; only when the config enables agentic traces)
             -> filter (rule-filters) -> verify -> judge -> score (style-metrics, difficulty)
             -> export (rebalance-export)

Each flow runs on its own (a run of its own: lock, `runs` row, counts artifact) or as a
subflow of `curate` (the UI shows the run as six nested flow runs, each with its tasks and logs;
one lock, one `runs` row and one `curate-run-counts` artifact for the whole run). Every stage is
one task of the same kind (flows/tasks.py run_stage); parameters are pydantic models
(flows/params.py); stages live in pipeline/stages/ (the list: pipeline/stage_list.py)."""

from __future__ import annotations

from prefect import flow

from flows.params import CurateParams, ExportParams, ScoreParams, StageParams, SynthesizeParams
from flows.report_artifact import publish_report
from flows.run_context import run_name, say_var, stage_run  # noqa: F401 - say_var: the CLI sets it
from flows.tasks import progress_var, run_stage  # noqa: F401 - progress_var: the CLI sets it
from pipeline.config_loading import load_run_config

_flow = dict(persist_result=False, flow_run_name=run_name)


def _config_of(params: StageParams):
    return lambda: load_run_config(params.config_path, model=params.model)


@flow(name="synthesize", **_flow)
def synthesize_flow(params: SynthesizeParams = SynthesizeParams()) -> dict:
    """Read the pools, screen the questions, pick this run's, classify their domains, generate samples."""
    load = lambda: load_run_config(params.config_path, params.questions, params.limit, params.model)  # noqa: E731
    with stage_run("synthesize", params, load) as run:
        for stage in ("ingest", "screen-questions", "classify-domains", "synthesize"):
            run_stage(run, stage)
    return run.counts


@flow(name="agentic", **_flow)
def agentic_flow(params: StageParams = StageParams()) -> dict:
    """Tool-use rollouts (shop_db, calculator, Python) on the engine, verified, stored, trace-checked."""
    with stage_run("agentic", params, _config_of(params)) as run:
        run_stage(run, "agentic-rollouts")
    return run.counts


@flow(name="filter", **_flow)
def filter_flow(params: StageParams = StageParams()) -> dict:
    """Every cheap rule (and the benchmark check of answers) over samples without its verdict."""
    with stage_run("filter", params, _config_of(params)) as run:
        run_stage(run, "rule-filters")
    return run.counts


@flow(name="verify", **_flow)
def verify_flow(params: StageParams = StageParams()) -> dict:
    """Answers against references, code against its tests, for samples not yet verified."""
    with stage_run("verify", params, _config_of(params)) as run:
        run_stage(run, "verify")
    return run.counts


@flow(name="judge", **_flow)
def judge_flow(params: StageParams = StageParams()) -> dict:
    """The configured judge rules, in order, over the samples each has not judged yet; then the
    enabled SQL rules (`curate rules enable`) over the samples without their verdict."""
    with stage_run("judge", params, _config_of(params)) as run:
        run_stage(run, "judge")
        run_stage(run, "sql-rules")  # enabled SQL rules may read judge scores
    return run.counts


@flow(name="score", **_flow)
def score_flow(params: ScoreParams = ScoreParams()) -> dict:
    """Style metrics (requested vs realized formats) and difficulty signals of the run's questions
    (the given ids, else the curate run's, else every question with samples)."""
    with stage_run("score", params, _config_of(params)) as run:
        if params.question_ids is not None:
            run.state.question_ids = params.question_ids
        run_stage(run, "style-metrics")
        run_stage(run, "difficulty")
    return run.counts


@flow(name="export", **_flow)
def export_flow(params: ExportParams = ExportParams()) -> dict:
    """Rebalance the kept samples and write a shard set (none when skip_unchanged and nothing changed)."""
    with stage_run("export", params, _config_of(params)) as run:
        run_stage(run, "rebalance-export", out=params.out, skip_unchanged=params.skip_unchanged)
    return run.counts


@flow(name="curate", **_flow)
def curate(params: CurateParams = CurateParams()) -> dict:
    """The whole pipeline, each stage group a subflow of this run: one lock, one `runs` row, one counts
    artifact, and the run's quality report (flows/report_artifact.py) linked as a second."""
    load = lambda: load_run_config(params.config_path, params.questions, params.limit, params.model)  # noqa: E731
    with stage_run("curate", params, load) as run:
        stage = params.model_dump(include=set(StageParams.model_fields))
        synthesize_flow(SynthesizeParams(**stage, questions=params.questions, limit=params.limit))
        if run.config.agentic.enabled:  # default runs stay as they were: no task, no counts key
            agentic_flow(StageParams(**stage))
        filter_flow(StageParams(**stage))
        verify_flow(StageParams(**stage))
        judge_flow(StageParams(**stage))
        score_flow(ScoreParams(**stage))
        export_flow(ExportParams(**stage, out=params.out, skip_unchanged=params.skip_unchanged))
        publish_report(run)
    return run.counts

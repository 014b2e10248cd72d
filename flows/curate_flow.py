"""The curate flows: one Prefect flow per stage, and the full `curate` flow that runs them in order.

    curate = synthesize (ingest -> screen-questions -> classify-domains -> synthesize)
             -> filter (rule-filters) -> verify -> judge (judge-<rule> ...) -> score (style-metrics,
             difficulty) -> export (rebalance-export)

Each stage flow runs on its own (a run of its own: lock, `runs` row, counts artifact) or as a
subflow of `curate` (the UI shows the run as six nested flow runs, each with its tasks and logs;
one lock, one `runs` row and one `curate-run-counts` artifact for the whole run). Parameters
are pydantic models (flows/params.py). Stages live in pipeline/, tasks in flows/tasks.py."""

from __future__ import annotations

from contextlib import contextmanager

from prefect import flow

from flows.params import CurateParams, ExportParams, ScoreParams, StageParams, SynthesizeParams
from flows.run_context import ActiveRun, run_name, say, say_var, stage_run  # noqa: F401 - say_var: the CLI sets it
from flows.tasks import (difficulty_task, domains_task, export_task, filter_task, ingest_task, judge_task,
                         progress_var, screen_task, style_metrics_task, synthesize_task, verify_task)  # noqa: F401
from pipeline.config_loading import load_run_config
from pipeline.engines.factory import make_engine
from pipeline.stages.ingest import select_questions
from pipeline.stages.publish import latest_export
from pipeline.store import Store

_flow = dict(persist_result=False, flow_run_name=run_name)


def _config_of(params: StageParams):
    return lambda: load_run_config(params.config_path, model=params.model)


@flow(name="synthesize", **_flow)
def synthesize_flow(params: SynthesizeParams = SynthesizeParams()) -> dict:
    """Read the pools, screen the questions, pick this run's, classify their domains, generate samples."""
    load = lambda: load_run_config(params.config_path, params.questions, params.limit, params.model)  # noqa: E731
    with stage_run("synthesize", params, load) as run:
        db, config, counts = run.db, run.config, run.counts
        report = ingest_task(db, config, run.run_id)
        counts["ingest"] = {"read": report.read, "new": report.new_questions, "quarantined": report.quarantined}
        for message in report.quarantine_messages[:10]:
            say(f"[quarantine] {message}")
        if report.quarantined > 10:
            say(f"[quarantine] ... {report.quarantined - 10} more (SELECT * FROM quarantine)")
        screen, pool = screen_task(db, config, run.run_id, report.pool)
        counts["screen"] = vars(screen)
        run.question_ids = select_questions(pool, config.limit, config.selection_seed)
        say(f"{report.read} questions read ({report.new_questions} new, {report.quarantined} quarantined); "
            f"{report.pool.height - pool.height} set aside by decontamination or dedup; "
            f"{len(run.question_ids)} selected for this run")
        engine = make_engine(config.engine, announce=say)  # loaded when first used (zero-shot domains, synthesis)
        if config.scaleout.runner == "ray":  # embeddings as tasks on Ray
            from flows.scaleout_flow import classify_on_ray

            counts["domains"] = classify_on_ray(db, config, run.run_id, run.question_ids, progress_var.get(), engine)
        else:
            counts["domains"] = domains_task(db, engine, config, run.run_id, run.question_ids)
        d = counts["domains"]
        if d["knn"] or d["zero_shot"]:
            say(f"[domains] {d['knn']} questions classified by kNN, {d['zero_shot']} by the zero-shot rule; "
                f"{d['adopted']} adopted, {d['other']} in no domain (SELECT * FROM question_domains)")
        counts["synthesize"] = vars(synthesize_task(db, engine, config, run.run_id, run.question_ids))
    return counts


@flow(name="filter", **_flow)
def filter_flow(params: StageParams = StageParams()) -> dict:
    """Every cheap rule (and the benchmark check of answers) over samples without its verdict."""
    with stage_run("filter", params, _config_of(params)) as run:
        if run.config.scaleout.runner == "ray":  # chunks as tasks on Ray; this process ingests their parts
            from flows.scaleout_flow import filter_on_ray

            counts = filter_on_ray(run.db, run.config, run.run_id, progress=progress_var.get())
        else:
            counts = filter_task(run.db, run.config, run.run_id)
        run.counts["filters"] = {c.rule: {"checked": c.checked, "failed": c.failed} for c in counts}
    return run.counts


@flow(name="verify", **_flow)
def verify_flow(params: StageParams = StageParams()) -> dict:
    """Answers against references, code against its tests, for samples not yet verified."""
    with stage_run("verify", params, _config_of(params)) as run:
        if run.config.scaleout.runner == "ray":
            from flows.scaleout_flow import verify_on_ray

            report = verify_on_ray(run.db, run.run_id, run.config.scaleout, progress=progress_var.get())
        else:
            report = verify_task(run.db, run.run_id)
        run.counts["verify"] = vars(report)
    return run.counts


@flow(name="judge", **_flow)
def judge_flow(params: StageParams = StageParams()) -> dict:
    """The configured judge rules, in order, over the samples each has not judged yet."""
    with stage_run("judge", params, _config_of(params)) as run:
        engine = make_engine(run.config.engine, announce=say)  # lazy: loads only if something is due
        run.counts["judges"] = _judge_all(run.db, engine, run.config, run.run_id)
    return run.counts


def _judge_all(db, engine, config, run_id) -> dict:
    """Judge rules in configured order, sharing the run's token budget."""
    left, reports = config.judges.token_budget, {}
    for name in config.judges.rules:
        report = judge_task(db, engine, config, run_id, name, left)
        if report.refused:
            say(f"[judge] {name} not run: {report.refused}")
        if report.skipped_budget:
            say(f"[judge] {name}: token budget reached, {report.skipped_budget} samples left for a later run "
                "(SELECT * FROM judge_pending)")
        if left is not None:
            left = max(0, left - report.prompt_tokens - report.completion_tokens)
        reports[name] = vars(report)
    return reports


@flow(name="score", **_flow)
def score_flow(params: ScoreParams = ScoreParams()) -> dict:
    """Style metrics (requested vs realized formats) and difficulty signals of the run's questions."""
    with stage_run("score", params, _config_of(params)) as run:
        question_ids = _questions_to_score(params, run)
        styles = style_metrics_task(run.db, run.config, run.run_id, question_ids, run.config.engine.model)
        run.counts["styles"] = vars(styles)
        for alarm in styles.alarms:
            say(f"[styles] overfit alarm: {alarm} (SELECT * FROM style_alarms)")
        engine = make_engine(run.config.engine, announce=say)  # lazy: only the llm_rating signal uses it
        run.counts["difficulty"] = vars(difficulty_task(run.db, engine, run.config, run.run_id, question_ids))
    return run.counts


def _questions_to_score(params: ScoreParams, run: ActiveRun) -> list[str]:
    """The given ids, else the curate run's questions, else every question with samples."""
    if params.question_ids is not None:
        return params.question_ids
    if run.question_ids is not None:
        return run.question_ids
    with Store(run.db, read_only=True) as store:
        return store.frame("SELECT DISTINCT question_id FROM samples ORDER BY 1")["question_id"].to_list()


@flow(name="export", **_flow)
def export_flow(params: ExportParams = ExportParams()) -> dict:
    """Rebalance the kept samples and write a shard set (none when skip_unchanged and nothing changed)."""
    with stage_run("export", params, _config_of(params)) as run:
        manifest = export_task(run.db, run.config, run.run_id, params.out, params.skip_unchanged)
        if manifest is None:
            with Store(run.db, read_only=True) as store:
                current = latest_export(store)[0]
            run.counts["export"] = {"status": f"unchanged, export {current} still current", "export_id": current}
        else:
            run.counts["export"] = {"status": "new shard set", "export_id": manifest.export_id,
                                    "rows": manifest.total_rows, "by_domain": manifest.counts_by_domain,
                                    "shortfall": [s.model_dump() for s in manifest.shortfall]}
        say(f"[export] {run.counts['export']['status']}: {run.counts['export']['export_id']}")
    return run.counts


@contextmanager
def _cluster(config):
    """With scaleout.runner: ray, one Ray cluster for the whole run (the filter and verify stages
    share its warm workers instead of starting their own)."""
    if config.scaleout.runner != "ray":
        yield
        return
    from flows.scaleout_flow import ray_cluster

    with ray_cluster(config.scaleout):
        yield


@flow(name="curate", **_flow)
def curate(params: CurateParams = CurateParams()) -> dict:
    """The whole pipeline, each stage a subflow of this run: one lock, one `runs` row, one artifact."""
    load = lambda: load_run_config(params.config_path, params.questions, params.limit, params.model)  # noqa: E731
    with stage_run("curate", params, load) as run, _cluster(run.config):
        stage = params.model_dump(include=set(StageParams.model_fields))
        synthesize_flow(SynthesizeParams(**stage, questions=params.questions, limit=params.limit))
        filter_flow(StageParams(**stage))
        verify_flow(StageParams(**stage))
        judge_flow(StageParams(**stage))
        score_flow(ScoreParams(**stage))
        export_flow(ExportParams(**stage, out=params.out, skip_unchanged=params.skip_unchanged))
    return run.counts

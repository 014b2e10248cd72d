"""Deployments of the full `curate` flow on a cron schedule (what `curate serve --cron` serves).

A scheduled run reads the configured question source (the config's pools, or given files),
synthesizes what is new, and writes a new shard set only when its selection differs from the
newest export's (skip_unchanged): otherwise the run's counts say "unchanged, export X still
current". Served runs execute one at a time (limit 1), so a slow run delays the next instead
of failing on the database's run lock."""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from pydantic import ValidationError

from flows.curate_flow import curate
from flows.params import CurateParams

DEFAULT_NAME = "scheduled"


def cron_schedule(expression: str, timezone: str | None = None) -> Cron:
    """A cron schedule; a bad expression or time zone raises ValueError naming the option."""
    for option, value, fields in (("--cron", expression, {"cron": expression}),
                                  ("--timezone", timezone, {"cron": expression, "timezone": timezone})):
        try:
            CronSchedule(**fields)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            hint = " (five fields: minute hour day month weekday, e.g. '0 * * * *' hourly)" if option == "--cron" else ""
            raise ValueError(f"{option} {value!r}: {message}{hint}") from None
    return Cron(expression, timezone=timezone)


def curate_deployment(params: CurateParams, cron: str, *, name: str = DEFAULT_NAME,
                      timezone: str | None = None) -> RunnerDeployment:
    """The `curate` flow with these parameters on this schedule (not yet registered or served)."""
    schedule = cron_schedule(cron, timezone)
    params = params.model_copy(update={"skip_unchanged": True})  # scheduled runs never re-export unchanged data
    return curate.to_deployment(
        name=name, schedule=schedule, parameters={"params": params.model_dump(mode="json")},
        description=f"curate on {cron!r}: database {params.db}, shard sets under {params.out}",
        tags=["curate"],
    )


def describe(deployment: RunnerDeployment) -> dict:
    """What will run and when, as JSON (`curate serve --dry-run`)."""
    return {
        "flow": deployment.flow_name, "deployment": deployment.name,
        "schedules": [{"cron": s.schedule.cron, "timezone": s.schedule.timezone or "UTC"} for s in deployment.schedules],
        "parameters": deployment.parameters,
    }


def serve_deployments(*deployments: RunnerDeployment) -> None:
    """Register the deployments with the Prefect API and run their scheduled runs until stopped."""
    serve(*deployments, limit=1)

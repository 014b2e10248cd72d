"""Deployments of the full `curate` flow on a cron schedule (what `curate serve --cron` serves).

A scheduled run reads the configured question source (the config's pools, or given files),
synthesizes what is new, and writes a new shard set only when its selection differs from the
newest export's (skip_unchanged): otherwise the run's counts say "unchanged, export X still
current". Served runs execute one at a time (limit 1), so a slow run delays the next instead
of failing on the database's run lock.

The serving process also creates the cron runs itself, a couple of minutes ahead, as the Prefect
server's scheduler service does: runs then appear even where that service is off or broken (it
fails with SQLAlchemy 2.1 - "Can't evaluate bulk DML statement" - which is why the lock pins
2.0.x). The runs carry the idempotency keys the server's scheduler uses, so where both work each
time still gets exactly one run."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from pydantic import ValidationError

from flows.curate_flow import curate
from flows.params import CurateParams

DEFAULT_NAME = "scheduled"
log = logging.getLogger("curate.serve")


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
    """Register the deployments with the Prefect API and execute their scheduled runs, one at a
    time, until stopped (Ctrl+C or SIGTERM)."""
    try:
        asyncio.run(_serve(deployments))
    except KeyboardInterrupt:
        pass


async def _serve(deployments) -> None:
    from prefect.runner import Runner

    runner = Runner(limit=1, pause_on_shutdown=True)
    ids = [await runner.aadd_deployment(d) for d in deployments]
    tickers = [asyncio.create_task(_keep_scheduled(i)) for i in ids]
    try:
        await runner.start()
    finally:
        for ticker in tickers:
            ticker.cancel()


SCHEDULE_AHEAD = timedelta(minutes=2)
_TICK_S = 30


async def _keep_scheduled(deployment_id: UUID) -> None:
    while True:
        try:
            async with get_client() as client:
                await schedule_due_runs(client, deployment_id)
        except Exception as exc:  # the API may be restarting: try again next tick
            log.warning("scheduling runs of deployment %s failed (next try in %d s): %s: %s",
                        deployment_id, _TICK_S, type(exc).__name__, exc)
        await asyncio.sleep(_TICK_S)


async def schedule_due_runs(client: PrefectClient, deployment_id: UUID, now: datetime | None = None,
                            ahead: timedelta = SCHEDULE_AHEAD) -> list:
    """Create the deployment's cron runs from `now` to `now + ahead` (none while it is paused), with
    the dates and idempotency keys of the server's scheduler: calling it again creates nothing new."""
    from prefect.server.schemas.schedules import CronSchedule as ServerCron
    from prefect.states import Scheduled

    deployment = await client.read_deployment(deployment_id)
    if deployment.paused:
        return []
    now = now or datetime.now(timezone.utc)
    runs = []
    for item in deployment.schedules:
        if not item.active or not isinstance(item.schedule, CronSchedule):
            continue
        cron = ServerCron(cron=item.schedule.cron, timezone=item.schedule.timezone, day_or=item.schedule.day_or)
        for date in await cron.get_dates(start=now, end=now + ahead):
            runs.append(await client.create_flow_run_from_deployment(
                deployment_id, state=Scheduled(scheduled_time=date),
                idempotency_key=f"scheduled {deployment.id} {item.id} {date}"))
    return runs

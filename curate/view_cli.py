"""`curate view`: browse the store in a local, read-only web app (pipeline/viewer/)."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
HOST = "127.0.0.1"  # never another interface: the viewer shows every sample to whoever reaches it


def view(
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file to browse (opened read-only)."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
    max_rows: int = typer.Option(1000, "--max-rows", min=1, help="Rows the SQL box returns at most."),
    timeout: float = typer.Option(10, "--timeout", min=0.1, help="Seconds before a SQL box query is stopped."),
) -> None:
    """Browse the samples in a local, read-only web app.

    Filter by domain, style, failed rule, judge score, difficulty, run or export; open a sample to
    see its prompt, reasoning, answer, verdicts, judge rationales, difficulty signals and exports;
    search the text; run read-only SQL. Bound to 127.0.0.1 only; the printed URL carries a random
    access token that every request needs. Ctrl+C stops."""
    import uvicorn

    from pipeline.read_only_query import QueryRefused, connect
    from pipeline.viewer.app import make_app

    try:
        connect(db).close()  # fail now, with the reason, rather than on the first page
    except QueryRefused as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    token = secrets.token_urlsafe(24)
    sock = socket.socket()
    sock.bind((HOST, port))  # listening before the URL is printed: an early request waits, it is not refused
    sock.listen(128)
    url = f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
    console.print(f"curate view: {db} (read-only)\n  open {url}\n  Ctrl+C stops", highlight=False, soft_wrap=True)
    config = uvicorn.Config(make_app(db, token, max_rows=max_rows, timeout_s=timeout), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])

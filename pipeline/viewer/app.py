"""The viewer's web app (FastAPI, served by uvicorn on 127.0.0.1 by `curate view`).

What keeps it read-only and local:
- every request needs the access token: `?token=` in the printed URL, then a cookie set from it
  (HttpOnly, SameSite=Strict, so another site's page cannot send it); a request with neither is
  refused (403), and a Host other than 127.0.0.1 / localhost is refused (DNS rebinding);
- the store is read through pipeline/viewer/db.py (read-only, external access off, one
  connection per request); the SQL box goes through `curate query`'s own guard
  (pipeline/read_only_query.run_query: one SELECT, no other files, a row and a time limit);
- pages are rendered by Jinja in a sandboxed environment with autoescaping: stored text is
  a value that is escaped into the page, never a template; the Content-Security-Policy allows
  no script at all and forms that post only back to the viewer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from urllib.parse import urlencode

import duckdb
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pipeline.read_only_query import QueryRefused, run_query
from pipeline.viewer import queries
from pipeline.viewer.db import RunInProgress, check_free, reading
from pipeline.viewer.search import search

HERE = Path(__file__).parent
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the first URL carries the token
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
EXAMPLE_SQL = "SELECT domain, kept, count(*) AS n FROM sample_status GROUP BY ALL ORDER BY ALL"


def templates() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pretty"] = _pretty
    env.filters["num"] = lambda v, digits=3: "" if v is None else f"{v:.{digits}g}" if isinstance(v, float) else str(v)
    return env


def _pretty(value) -> str:
    """JSON (a string or a value) indented for reading; other text as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, indent=1, ensure_ascii=False, default=str)


def make_app(db: Path, token: str, max_rows: int = 1000, timeout_s: float = 10) -> FastAPI:
    """The viewer over the DuckDB file `db`; `token` is the secret every request must carry."""
    db = Path(db)
    env = templates()
    cookie = "curate_view_" + hashlib.sha256(token.encode()).hexdigest()[:8]  # one per viewer (ports share cookies)
    app = FastAPI(title="curate view", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        given = request.query_params.get("token") or request.cookies.get(cookie) or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            response = PlainTextResponse("403: this viewer needs its access token: open the URL that "
                                         "`curate view` printed", status_code=403)
        else:
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        response.headers.update(HEADERS)
        return response

    # Added last, so it runs first: a request naming another host never reaches the token check.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])

    def page(name: str, http_status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(db=str(db), **context), status_code=http_status)

    def failure(exc: Exception) -> HTMLResponse:
        if isinstance(exc, RunInProgress):
            return page("error.html", 503, title="A run is writing", message=str(exc))
        if isinstance(exc, queries.BadFilter):
            return page("error.html", 400, title="Bad filter", message=str(exc))
        if isinstance(exc, QueryRefused):
            return page("error.html", 503, title="Cannot read the store", message=str(exc))
        return page("error.html", 500, title="Query failed", message=str(exc))

    @app.get("/", response_class=HTMLResponse)
    def samples(request: Request):
        try:
            f = queries.Filters.from_query(request.query_params)
            with reading(db) as con:
                ids = search(con, db, f.q) if f.q else None
                options = queries.choices(con)
                rows, total = queries.list_samples(con, f, ids, judges=options["judge"])
        except (QueryRefused, queries.BadFilter, duckdb.Error, OSError) as exc:  # OSError: the search index folder
            return failure(exc)
        pages = max(1, -(-total // queries.PAGE_SIZE))

        def link(**changes) -> str:
            return "/?" + urlencode(f.query_string(**changes))

        return page("samples.html", rows=rows, total=total, f=f, options=options, page=f.page, pages=pages,
                    link=link, searched=ids is not None)

    @app.get("/sample/{sample_id}", response_class=HTMLResponse)
    def sample(sample_id: str):
        try:
            with reading(db) as con:
                detail = queries.sample_detail(con, sample_id)
        except (QueryRefused, duckdb.Error) as exc:
            return failure(exc)
        if detail is None:
            return page("error.html", 404, title="No such sample", message=f"no sample {sample_id!r} in {db}")
        return page("sample.html", **detail)

    @app.get("/sql", response_class=HTMLResponse)
    def sql_form():
        return page("sql.html", sql=EXAMPLE_SQL, result=None, error=None, max_rows=max_rows, timeout_s=timeout_s)

    @app.post("/sql", response_class=HTMLResponse)
    def sql_run(sql: str = Form("")):
        result, error, status = None, None, 200
        try:
            check_free(db)  # run_query opens its own guarded connection
            frame, truncated = run_query(db, sql, max_rows=max_rows, timeout_s=timeout_s)
            result = {"columns": frame.columns, "rows": frame.rows(), "truncated": truncated}
        except QueryRefused as exc:
            error, status = f"refused: {exc}", 400
        except duckdb.Error as exc:
            error, status = f"error: {exc}", 400
        return page("sql.html", status, sql=sql, result=result, error=error, max_rows=max_rows, timeout_s=timeout_s)

    @app.get("/static/viewer.css")
    def css():
        return Response((HERE / "static" / "viewer.css").read_text(), media_type="text/css")

    @app.get("/favicon.ico")
    def favicon():  # browsers ask for it; no icon, and no 404 in their console
        return Response(status_code=204)

    return app

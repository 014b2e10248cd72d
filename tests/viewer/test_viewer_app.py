"""The viewer's server side on a real store (the slice of a real run, tests/viewer/store_slice.py):
the command serves on 127.0.0.1 with a token; other hosts, bad filters and a running `curate run`
get clear answers; the store file is never changed and never held open between requests."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.run_lock import run_lock
from pipeline.store import Store
from pipeline.viewer.app import make_app
from tests.conftest import ROOT
from tests.viewer.store_slice import build

TOKEN = "test-token"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("viewer") / "curate.duckdb")


@pytest.fixture()
def client(db):
    client = TestClient(make_app(db, TOKEN), base_url="http://127.0.0.1")
    client.get(f"/?token={TOKEN}")  # sets the cookie
    return client


def test_another_host_name_is_refused(db):
    client = TestClient(make_app(db, TOKEN), base_url="http://viewer.example.com")
    assert client.get(f"/?token={TOKEN}").status_code == 400


def test_a_bad_filter_names_its_field(client):
    response = client.get("/?difficulty_min=hard")
    assert response.status_code == 400 and "difficulty_min: &#39;hard&#39; is not a number" in response.text


def test_an_unknown_sample_is_a_404(client):
    assert client.get("/sample/no-such-id").status_code == 404


def test_pages_forbid_scripts(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy  # no script source allowed at all


def test_while_a_run_writes_the_viewer_stays_out_of_the_file(client, db):
    with run_lock(db):
        response = client.get("/")
        assert response.status_code == 503 and "being written by a running `curate run`" in response.text
        assert client.post("/sql", data={"sql": "SELECT 1"}).status_code == 400
        with Store(db) as store:  # the run can open its database: the viewer does not hold it
            assert store.count("samples") == 72
    assert client.get("/").status_code == 200


def test_browsing_changes_nothing_in_the_store(client, db):
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for url in ["/", "/?q=median&kept=no", "/?failed=answer_match&judge_min=3", "/sample/0113728090761628"]:
        assert client.get(url).status_code == 200, url
    client.post("/sql", data={"sql": "DELETE FROM samples"})
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with Store(db) as store:  # and no connection is left open: a writer gets the file
        assert store.count("samples") == 72


def test_the_command_serves_on_localhost_with_a_token(db):
    env = dict(os.environ, CURATE_HOME=str(ROOT / ".curate"))
    proc = subprocess.Popen([sys.executable, "-m", "curate", "view", "--db", str(db)], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "curate view exited"
            found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
            url = found and found.group(0)
        assert url, "no URL printed"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"curate view" in response.read()
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(url.split("?")[0], timeout=10)
        port = int(re.search(r":(\d+)/", url).group(1))
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # 0A: LISTEN
        assert f"0100007F:{port:04X}" in local and f"00000000:{port:04X}" not in local  # 127.0.0.1 only
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_command_refuses_a_missing_database(tmp_path):
    result = subprocess.run([sys.executable, "-m", "curate", "view", "--db", str(tmp_path / "none.duckdb")],
                            cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, CURATE_HOME=str(ROOT / ".curate")))
    assert result.returncode == 2 and "no such database" in result.stderr


def test_the_list_status_agrees_with_sample_status(db):
    """queries.status_of restates sample_status for a page of ids; on the real store they agree."""
    from pipeline.read_only_query import connect
    from pipeline.viewer.queries import status_of

    con = connect(db)
    try:
        everyone, questions = zip(*con.sql("SELECT sample_id, question_id FROM samples").fetchall())
        mine = sorted(tuple(r.values()) for r in status_of(con, list(everyone), sorted(set(questions))))
        view = sorted(con.sql("SELECT sample_id, kept, failed_rules, n_verdicts FROM sample_status").fetchall())
    finally:
        con.close()
    assert len(mine) == 72 and mine == view
    assert {kept for _, kept, _, _ in mine} == {True, False}

"""`curate view` in headless Chromium over a real store (tests/viewer/store_slice.py: a slice of
a real 1.5B-model run, plus one planted sample of hostile text): pages render with no console
errors, filters and search find what SQL finds, a sample's verdicts open one by one; requests
without the token, writes and file reads through the SQL box are refused."""

from __future__ import annotations

import duckdb

from tests.browser.conftest import screenshot
from tests.viewer.store_slice import HOSTILE, PLANTED_ID


def q(db, sql: str, params: list | None = None):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql, params=params).fetchall()


def test_the_sample_list_renders_every_sample(viewer, chromium_page, tmp_path):
    page = chromium_page
    response = page.goto(viewer.url)
    assert response.status == 200
    total = q(viewer.db, "SELECT count(*) FROM samples")[0][0]
    assert page.locator("#count").inner_text().startswith(f"{total} samples")
    assert page.locator("a.sample-link").count() == min(total, 50)
    screenshot(page, tmp_path, "viewer-samples")
    page.click("text=next →")
    assert page.locator("a.sample-link").count() == total - 50
    assert page.errors == []


def test_filters_select_what_sql_selects(viewer, chromium_page):
    page = chromium_page
    page.goto(viewer.url)
    page.select_option("select[name=domain]", "math")
    page.select_option("select[name=failed]", "answer_match")
    page.click("button[type=submit]")
    expected = {r[0] for r in q(viewer.db, """
        SELECT s.sample_id FROM samples s JOIN questions USING (question_id) JOIN latest_verdicts v USING (sample_id)
        WHERE domain = 'math' AND v.rule = 'answer_match' AND NOT v.passed""")}
    assert expected and set(page.locator("a.sample-link").all_inner_texts()) == expected
    # Judge score and difficulty bounds: typed numbers.
    page.goto(viewer.url)
    page.fill("input[name=judge_min]", "5")
    page.fill("input[name=difficulty_min]", "0.3")
    page.click("button[type=submit]")
    expected = {r[0] for r in q(viewer.db, """
        SELECT v.sample_id FROM latest_verdicts v JOIN samples s USING (sample_id)
        JOIN question_difficulty d ON d.question_id = s.question_id AND d.method = 'combined'
        WHERE v.stage = 'judge' AND v.score >= 5 AND d.score >= 0.3""")}
    assert expected and set(page.locator("a.sample-link").all_inner_texts()) == expected
    assert page.errors == []


def test_a_samples_verdicts_open_one_by_one(viewer, chromium_page, tmp_path):
    sample_id, export_id, rationale = q(viewer.db, """
        SELECT v.sample_id, x.export_id, v.reason FROM verdicts v JOIN selections x USING (sample_id)
        WHERE v.stage = 'judge' ORDER BY v.sample_id, x.export_id LIMIT 1""")[0]
    page = chromium_page
    page.goto(viewer.url)
    page.select_option("select[name=judge]", "logical_completeness")
    page.click("button[type=submit]")
    page.click(f"a.sample-link:text-is('{sample_id}')")
    assert page.locator("h1").inner_text() == f"sample {sample_id}"
    stored = q(viewer.db, "SELECT rule, rule_version, reason FROM verdicts WHERE sample_id = ?", [sample_id])
    verdicts = page.locator("#verdicts details.verdict")
    assert verdicts.count() == len(stored)
    for i in range(verdicts.count()):
        item = verdicts.nth(i)
        assert not item.locator("dl").is_visible()
        item.locator("summary").click()
        assert item.locator("dl").is_visible()
        assert "rule version" in item.inner_text()
    shown = page.locator("#verdicts").inner_text()
    for rule, version, reason in stored:
        assert f"{rule} v{version}" in shown and (reason is None or reason.strip() in shown)
    assert rationale.strip() in page.locator("#judges").inner_text()
    assert export_id in page.locator("#exports").inner_text()
    methods = [r[0] for r in q(viewer.db, "SELECT method FROM question_difficulty d JOIN samples s USING (question_id) "
                                          "WHERE s.sample_id = ?", [sample_id])]
    assert methods and all(m in page.locator("#difficulty").inner_text() for m in methods)
    for i in range(verdicts.count() - 1):  # the screenshot: every verdict's line, the judge's open
        verdicts.nth(i).locator("summary").click()
    page.locator("#verdicts h2").evaluate("h => h.scrollIntoView()")
    screenshot(page, tmp_path, "viewer-sample")
    assert page.errors == []


def test_search_finds_the_samples_that_contain_the_words(viewer, chromium_page):
    page = chromium_page
    page.goto(viewer.url)
    page.fill("input[name=q]", "median of three numbers")
    page.press("input[name=q]", "Enter")
    hits = page.locator("a.sample-link").all_inner_texts()
    with_median = {r[0] for r in q(viewer.db, """SELECT sample_id FROM samples JOIN questions q USING (question_id)
                                                 WHERE q.text ILIKE '%median%'""")}
    assert with_median and set(hits[:len(with_median)]) == with_median  # the best hits first
    assert "matching “median of three numbers”" in page.locator("#count").inner_text()
    assert page.errors == []


def test_stored_html_script_and_jinja_are_shown_as_text(viewer, chromium_page):
    page = chromium_page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(viewer.url)
    page.goto(f"{viewer.base}/sample/{PLANTED_ID}")
    assert page.locator("#reasoning pre").inner_text() == HOSTILE
    assert page.locator("#reasoning img").count() == 0 and page.locator("main script").count() == 0
    assert dialogs == [] and page.errors == []


def test_requests_without_the_token_are_refused(viewer, chromium_page):
    for path in ["/", "/sql", "/static/viewer.css", f"/sample/{PLANTED_ID}", "/?token=wrong"]:
        response = chromium_page.goto(viewer.base + path)
        assert response.status == 403, path
        assert "access token" in chromium_page.content() and PLANTED_ID not in chromium_page.content()
    response = chromium_page.request.post(viewer.base + "/sql", form={"sql": "SELECT 1"})
    assert response.status == 403


REFUSED = [
    ("INSERT INTO runs SELECT * FROM runs", "INSERT statements are not allowed"),
    ("DROP TABLE samples", "DROP statements are not allowed"),
    ("COPY samples TO '/tmp/viewer-copy.csv'", "COPY statements are not allowed"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM samples; DROP TABLE samples", "one statement at a time"),
    ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH statements are not allowed"),
]


def test_the_sql_box_refuses_writes_and_file_reads(viewer, chromium_page):
    page = chromium_page
    page.goto(viewer.url)
    page.click("header >> text=SQL")
    for sql, message in REFUSED:
        page.fill("textarea[name=sql]", sql)
        page.click("button:text('run')")
        assert message in page.locator("#error").inner_text(), sql
        assert page.locator("#result").count() == 0
    assert q(viewer.db, "SELECT count(*) FROM samples")[0][0] == 73


def test_the_sql_box_answers_a_select_within_its_row_limit(viewer, chromium_page):
    page = chromium_page
    page.goto(f"{viewer.base}/sql?token={viewer.token}")
    page.fill("textarea[name=sql]", "SELECT domain, count(*) AS n FROM questions GROUP BY ALL ORDER BY ALL")
    page.click("button:text('run')")
    cells = page.locator("#result tbody td").all_inner_texts()
    assert cells == [str(v) for row in q(viewer.db, "SELECT domain, count(*) FROM questions GROUP BY ALL ORDER BY ALL")
                     for v in row]
    page.fill("textarea[name=sql]", "SELECT * FROM range(1000)")
    page.click("button:text('run')")
    assert page.locator("#result tbody tr").count() == 100  # the viewer's --max-rows in the fixture
    assert "only the first 100" in page.locator("#count").inner_text()
    assert page.errors == []

"""`curate judges` commands that need no model: list, show, add (engine-backed test, eval and
backfill run in tests/flows/test_e2e.py on the end-to-end database)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from curate.cli import app
from judges.loader import load_rule

runner = CliRunner()


def test_add_scaffolds_a_valid_commented_rule(tmp_path: Path):
    result = runner.invoke(app, ["judges", "add", "cites_sources", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = tmp_path / "cites_sources.yaml"
    text = path.read_text()
    assert text.startswith("# Judge rule `cites_sources`") and "TODO" in text
    rule = load_rule(str(path))
    assert (rule.name, rule.version, rule.threshold) == ("cites_sources", 1, 3)
    assert "{{ open }}answer" in rule.prompt


def test_add_refuses_bad_names_and_existing_files(tmp_path: Path):
    bad = runner.invoke(app, ["judges", "add", "Bad-Name", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "lowercase" in bad.output
    assert runner.invoke(app, ["judges", "add", "twice", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["judges", "add", "twice", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "exists" in again.output


def test_list_shows_builtin_and_user_rules(tmp_path: Path):
    runner.invoke(app, ["judges", "add", "my_rule", "--dir", str(tmp_path)])
    result = runner.invoke(app, ["judges", "list", "--rules-dir", str(tmp_path), "--db", str(tmp_path / "none.duckdb")],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("logical_completeness", "correctness", "redundancy", "my_rule"):
        assert name in result.stdout


def test_a_broken_rule_file_is_reported_with_file_and_line(tmp_path: Path):
    runner.invoke(app, ["judges", "add", "broken", "--dir", str(tmp_path)])
    path = tmp_path / "broken.yaml"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("threshold:"))
    lines[at] = "threshold: high"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["judges", "show", "broken", "--rules-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{path}:{at + 1}: field 'threshold'" in result.output


def test_show_prints_yaml_rubric_and_schema():
    result = runner.invoke(app, ["judges", "show", "logical_completeness", "--db", "/nonexistent.duckdb"])
    assert result.exit_code == 0, result.output
    assert "name: logical_completeness" in result.stdout
    assert "Rule: logical_completeness" in result.stdout  # the shared system message
    assert '"maxLength": 160' in result.stdout


def test_unknown_rule_lists_known_ones():
    result = runner.invoke(app, ["judges", "show", "no_such_rule"])
    assert result.exit_code == 2 and "unknown judge rule 'no_such_rule'" in result.output

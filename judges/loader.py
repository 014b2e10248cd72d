"""Find and load judge rules: built-in YAMLs in judges/rules/ plus a user's rules folder."""

from __future__ import annotations

from pathlib import Path

from schemas.judge_rule import JudgeRule
from schemas.yaml_loading import ConfigError, load_yaml_model

BUILTIN_DIR = Path(__file__).parent / "rules"


def rule_files(extra_dir: str | Path | None = None) -> dict[str, Path]:
    """Rule name (file stem) -> file; a user's folder overrides built-ins of the same name."""
    files = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
    if extra_dir:
        files.update({p.stem: p for p in sorted(Path(extra_dir).glob("*.yaml"))})
    return files


def sample_rule_names(extra_dir: str | Path | None = None) -> list[str]:
    """Rules that judge samples (not questions, like difficulty_rating): what "all" means for judging."""
    return [name for name in rule_files(extra_dir) if load_rule(name, extra_dir).target == "sample"]


def rule_path(name_or_path: str, extra_dir: str | Path | None = None) -> Path:
    """A rule's YAML file: the path itself, or the file a rule name refers to."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    files = rule_files(extra_dir)
    if name_or_path not in files:
        raise ConfigError(f"unknown judge rule {name_or_path!r}; known: {sorted(files)}")
    return files[name_or_path]


def load_rule(name_or_path: str, extra_dir: str | Path | None = None) -> JudgeRule:
    path = rule_path(name_or_path, extra_dir)
    from judges.render import template_errors

    rule = load_yaml_model(path, JudgeRule,
                           checks=lambda r: [(("prompt",), e) for e in template_errors(r.prompt, r.target)])
    if rule.name != path.stem:
        raise ConfigError(f"{path}:1: field 'name': rule name {rule.name!r} must match the file name {path.stem!r}")
    return rule

"""Turn CLI arguments and a config file into one validated CurateConfig with absolute paths."""

from __future__ import annotations

from pathlib import Path

from pipeline.pools import template_errors
from pipeline.rules import rule_config_errors
from schemas.config import CurateConfig, PoolConfig
from schemas.yaml_loading import load_yaml_model

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"


def load_run_config(config_path: str | Path | None = None, questions: list[str] | None = None,
                    limit: int | None = None, model: str | None = None) -> CurateConfig:
    """Pools in a config file are relative to that file; --questions paths to the working dir.

    A --questions path that matches a configured pool keeps that pool's field mapping;
    any other path is read with the default mapping ({"question", "answer"}).
    """
    path = Path(config_path) if config_path else DEFAULT_CONFIG
    config = load_yaml_model(path, CurateConfig, checks=lambda c: rule_config_errors(c) + template_errors(c))
    base = path.resolve().parent
    pools = [p.model_copy(update={"path": str((base / p.path).resolve())}) for p in config.pools]
    if questions:
        by_path = {p.path: p for p in pools}
        pools = []
        for q in questions:
            resolved = str(Path(q).resolve())
            pools.append(by_path.get(resolved) or PoolConfig(path=resolved))
    benchmarks = [b.model_copy(update={"path": str((base / b.path).resolve())})
                  for b in config.decontamination.benchmarks]
    update: dict = {"pools": pools,
                    "decontamination": config.decontamination.model_copy(update={"benchmarks": benchmarks})}
    if config.judges.rules_dir:
        update["judges"] = config.judges.model_copy(update={"rules_dir": str((base / config.judges.rules_dir).resolve())})
    if limit is not None:
        update["limit"] = limit
    if model is not None:  # --model: the engine's model, and so the export's tokenizer when it is "synthesis"
        update["engine"] = config.engine.model_copy(update={"model": model})
    return config.model_copy(update=update)

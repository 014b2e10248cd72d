"""A run's counts per stage as a markdown table (the Prefect artifact of every `curate` run)."""

from __future__ import annotations


def _cells(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cells(v)}" for k, v in value.items() if not isinstance(v, (list, dict)) or v)
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def counts_markdown(counts: dict) -> str:
    """counts: what the flow returns (stage -> dict of figures)."""
    lines = [f"# curate run {counts.get('run_id', '')}", "", "| stage | counts |", "|---|---|"]
    for stage, value in counts.items():
        if stage == "run_id":
            continue
        if stage == "filters":
            for rule, c in value.items():
                lines.append(f"| filter {rule} | checked {c['checked']}, failed {c['failed']} |")
        elif stage == "judges":
            for rule, j in value.items():
                lines.append(f"| judge {rule} | " + (f"not run: {j['refused']}" if j.get("refused") else
                             f"judged {j['judged']} of {j['eligible']}, kept {j['kept']}, errors {j['errors']}") + " |")
        else:
            lines.append(f"| {stage} | {_cells(value).replace('|', '/')} |")
    return "\n".join(lines) + "\n"

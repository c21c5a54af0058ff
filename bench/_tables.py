"""Markdown tables and PASS/FAIL verdicts shared by the benchmark scripts."""
from __future__ import annotations


def verdict(ok: bool | None) -> str:
    """``PASS``/``FAIL`` for a checked target, ``—`` for an information-only row (None)."""
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table with columns padded to their widest cell."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    line = lambda r: "| " + " | ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def print_targets(rows: list[tuple[str, str, str, bool | None]]) -> None:
    """Print ``(quantity, measured, target, ok)`` rows as the benchmark's summary table."""
    print(markdown_table(["quantity", "measured", "target", "result"], [(*r[:3], verdict(r[3])) for r in rows]))

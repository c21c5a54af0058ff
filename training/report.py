"""Run report notebooks headlessly and collect what they write.

Each notebook reads the environment variable ``MEMXBAR_RESULTS`` (the output directory) and
saves its figures there; the executed notebook is written next to them. Writes are atomic
(temporary file, then rename), so an interrupted report never leaves a half-written file.
"""
from __future__ import annotations

import os
from pathlib import Path

from devices._io import atomic_write_bytes  # noqa: F401  (re-exported: training modules import it here)

def save_figure(fig, path, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG to ``path`` atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
REPORT_NOTEBOOKS = ("01_devices.ipynb",)


def run_notebook(notebook: Path, out_dir: Path, timeout: float = 1800.0) -> Path:
    """Execute ``notebook`` with ``MEMXBAR_RESULTS=out_dir``; return the executed copy's path."""
    import nbformat
    from nbclient import NotebookClient

    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    previous = os.environ.get("MEMXBAR_RESULTS")
    os.environ["MEMXBAR_RESULTS"] = str(out_dir)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("MEMXBAR_RESULTS", None)
        else:
            os.environ["MEMXBAR_RESULTS"] = previous
    executed = out_dir / notebook.name
    atomic_write_bytes(executed, nbformat.writes(nb).encode())
    return executed


def run_report(out_dir: Path, notebooks=None, timeout: float = 1800.0) -> list[Path]:
    """Execute the report notebooks; return every file written under ``out_dir``."""
    names = list(notebooks) if notebooks else list(REPORT_NOTEBOOKS)
    before = {p for p in out_dir.rglob("*")} if out_dir.exists() else set()
    for name in names:
        run_notebook(NOTEBOOK_DIR / name, out_dir, timeout)
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and (p not in before or p.suffix == ".ipynb"))

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


def notebook_path(name: str) -> Path:
    """``notebooks/<name>``: ``name`` must be a plain ``.ipynb`` file name there (no path)."""
    if not isinstance(name, str) or not name.endswith(".ipynb") or Path(name).name != name or name.startswith("."):
        raise ValueError(f"notebook must be a .ipynb file name under {NOTEBOOK_DIR} (no directories), got {name!r}")
    path = NOTEBOOK_DIR / name
    if not path.is_file():
        available = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
        raise ValueError(f"notebook {name!r} not found under {NOTEBOOK_DIR}; available: {available}")
    return path


def run_notebook(notebook: Path, out_dir: Path, timeout: float = 1800.0, progress: bool = False) -> Path:
    """Execute ``notebook`` with ``MEMXBAR_RESULTS=out_dir``; return the executed copy's path.
    ``progress``: a bar over the notebook's code cells."""
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    previous = os.environ.get("MEMXBAR_RESULTS")
    os.environ["MEMXBAR_RESULTS"] = str(out_dir)
    cells = sum(cell.cell_type == "code" for cell in nb.cells)
    bar = tqdm(total=cells, desc=notebook.name, unit="cell", disable=not progress)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}},
                       on_cell_executed=lambda **_: bar.update(1)).execute()
    finally:
        bar.close()
        if previous is None:
            os.environ.pop("MEMXBAR_RESULTS", None)
        else:
            os.environ["MEMXBAR_RESULTS"] = previous
    executed = out_dir / notebook.name
    atomic_write_bytes(executed, nbformat.writes(nb).encode())
    return executed


def run_report(out_dir: Path, notebooks=None, timeout: float = 1800.0, progress: bool = False) -> list[Path]:
    """Execute the report notebooks (names under ``notebooks/``, all checked before the first
    runs); return every file written under ``out_dir``."""
    names = list(notebooks) if notebooks else list(REPORT_NOTEBOOKS)
    paths = [notebook_path(name) for name in names]
    before = {p for p in out_dir.rglob("*")} if out_dir.exists() else set()
    for path in paths:
        run_notebook(path, out_dir, timeout, progress=progress)
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and (p not in before or p.suffix == ".ipynb"))

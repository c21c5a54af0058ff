"""Hostile inputs for the training configs, the ``xbar train``/``study``/``report`` CLI and the
checkpoints (issue 15), table-driven, plus hypothesis strategies for malformed TOML configs.

Every bad input must end in a *clear error*: the API raises ``ValueError`` naming the option or
file; the CLI exits with code 2 and one line ``xbar: error: ...``; a damaged checkpoint is a
``CheckpointError`` whose one-line message names the file. ``python
tests/test_bad_inputs_training.py`` prints the tally (inputs tried, clear errors, tracebacks,
silent answers).
"""
from __future__ import annotations

import contextlib
import datetime
import io
import math
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.config import RunConfig

# ------------------------------------------------------------------ configs: one bad value per row
#: (section or None for top level, key, bad value, text the error must contain)
CONFIG_CASES = [
    (None, "name", "..", "name"), (None, "name", ".", "name"), (None, "name", "a/b", "name"),
    (None, "name", "", "name"), (None, "name", 5, "name"), (None, "name", "x\n", "name"),
    (None, "name", "../../etc", "name"), (None, "name", "a\\b", "name"), (None, "name", "x\u202e", "name"),
    (None, "seed", -1, "seed"), (None, "seed", 1.5, "seed"), (None, "seed", "0", "seed"),
    (None, "seed", True, "seed"), (None, "bogus", 1, "bogus"),
    (None, "train", 3, "[train] must be a table"), (None, "data", [1], "[data] must be a table"),
    (None, "evaluate", "x", "[evaluate] must be a table"),
    ("data", "dataset", "cifar", "dataset"), ("data", "dataset", 3, "dataset"),
    ("data", "batch_size", 0, "batch_size"), ("data", "batch_size", 1.5, "batch_size"),
    ("data", "batch_size", "50", "batch_size"), ("data", "batch_size", True, "batch_size"),
    ("data", "eval_batch_size", 0, "eval_batch_size"), ("data", "split_seed", -1, "split_seed"),
    ("data", "test_fraction", "x", "test_fraction"), ("data", "test_fraction", -0.1, "test_fraction"),
    ("data", "test_fraction", 1.5, "test_fraction"), ("data", "test_fraction", math.nan, "test_fraction"),
    ("train", "epochs", 0, "epochs"), ("train", "epochs", 1.5, "epochs"), ("train", "epochs", "3", "epochs"),
    ("train", "epochs", True, "epochs"), ("train", "lr", 0.0, "lr"), ("train", "lr", -1.0, "lr"),
    ("train", "lr", math.nan, "lr"), ("train", "lr", math.inf, "lr"), ("train", "lr", "0.01", "lr"),
    ("train", "lr", True, "lr"), ("train", "optimizer", "lbfgs", "optimizer"),
    ("train", "schedule", "step", "schedule"),
    ("train", "threads", "AUTO", "threads"), ("train", "threads", -1, "threads"), ("train", "threads", 2.0, "threads"),
    ("train", "method", "distill", "method"), ("train", "conversion_percentile", 0, "conversion_percentile"),
    ("train", "conversion_percentile", 101, "conversion_percentile"),
    ("train", "conversion_percentile", True, "conversion_percentile"),
    ("train", "conversion_percentile", math.nan, "conversion_percentile"),
    ("train", "momentum", -1.0, "momentum"), ("train", "weight_decay", math.nan, "weight_decay"),
    ("evaluate", "modes", ["analog"], "evaluate.modes"), ("evaluate", "modes", "noisy", "evaluate.modes"),
    ("evaluate", "times", [-1.0], "evaluate.times"), ("evaluate", "times", [math.nan], "evaluate.times"),
    ("evaluate", "times", "1.0", "evaluate.times"), ("evaluate", "times", [True], "evaluate.times"),
    ("evaluate", "steps_time", -1.0, "steps_time"), ("evaluate", "repeats", 0, "repeats"),
    ("evaluate", "repeats", 2.5, "repeats"), ("evaluate", "families", ["sram"], "evaluate.families"),
    ("evaluate", "time_steps", [0], "time_steps"), ("evaluate", "time_steps", [1.5], "time_steps"),
    ("network", "hidden", 16, "hidden"), ("network", "hidden", [0], "hidden"),
    ("network", "time_steps", 0, "time_steps"),
    ("network", "neuron", "hh", "neuron"), ("network", "bogus", 1, "bogus"),
    ("hardware", "family", "flash", "family"), ("hardware", "mode", "quantum", "mode"),
    ("hardware", "tile_rows", 0, "tile_rows"), ("hardware", "bogus", 1, "bogus"),
]


def _config_case(section, key, value):
    return {key: value} if section is None else {section: {key: value}}


def classify_config(section, key, value, needle) -> tuple[str, str]:
    try:
        RunConfig.from_dict(_config_case(section, key, value))
    except ValueError as exc:
        text = str(exc)
        return ("clear" if needle in text and "\n" not in text.strip() else "unclear"), text[:300]
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    return "silent", "accepted"


@pytest.mark.parametrize("section, key, value, needle", CONFIG_CASES,
                         ids=[f"{s or 'run'}.{k}={v!r}"[:60] for s, k, v, _ in CONFIG_CASES])
def test_bad_config_value_is_a_clear_error(section, key, value, needle):
    outcome, detail = classify_config(section, key, value, needle)
    assert outcome == "clear", detail


# ------------------------------------------------------------------ CLI: one line, exit 2
TINY_TOML = """name = "tiny"
[data]
batch_size = 500
[network]
hidden = [4]
time_steps = 2
[train]
epochs = 1
threads = 1
[evaluate]
times = [1.0]
time_steps = [2]
"""


def cli_cases(tmp: Path, write: bool = True) -> dict:
    def f(name, text):
        path = tmp / name
        if write:
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text)
        return str(path)

    afile = f("afile", "x")
    return {
        "config missing": (["train", "--config", str(tmp / "missing.toml")], "config file not found"),
        "config is a directory": (["train", "--config", str(tmp)], "config file not found"),
        "config invalid TOML": (["train", "--config", f("bad.toml", "[train\nepochs = 3\n")], "invalid TOML"),
        "config binary": (["train", "--config", f("bin.toml", b"\xff\xfe\x00\x01garbage")], "invalid TOML"),
        "config empty name": (["train", "--config", f("n.toml", 'name = ""\n')], "name must be"),
        "config name ..": (["train", "--config", f("dd.toml", 'name = ".."\n')], "name must be"),
        "config wrong type": (["train", "--config", f("wt.toml", "[train]\nepochs = \"30\"\n")], "epochs"),
        "config date": (["train", "--config", f("dt.toml", "[train]\nepochs = 1979-05-27\n")], "epochs"),
        "config section not a table": (["train", "--config", f("st.toml", "train = 3\n")], "[train] must be a table"),
        "config unknown key": (["train", "--config", f("uk.toml", "[train]\nepoch = 3\n")], "epoch"),
        "config bad lr": (["train", "--config", f("lr.toml", "[train]\nlr = nan\n")], "lr"),
        "epochs 0": (["train", "--epochs", "0"], "--epochs"),
        "epochs text": (["train", "--epochs", "ten"], "--epochs"),
        "epochs float": (["train", "--epochs", "1.5"], "--epochs"),
        "out is a file": (["train", "--config", f("ok.toml", TINY_TOML), "--out", afile], "not a directory"),
        "out under a file": (["train", "--config", f("ok2.toml", TINY_TOML), "--out", afile + "/run"],
                             "not a directory"),
        "out unwritable": (["train", "--config", f("ok3.toml", TINY_TOML), "--out", "/sys/memxbar/run"],
                           "not writable"),
        "study out unwritable": (["study", "--out", "/sys/memxbar"], "not writable"),
        "study out is a file": (["study", "--out", afile], "not a directory"),
        "report out unwritable": (["report", "--out", "/sys/memxbar"], "not writable"),
        "report notebook traversal": (["report", "--out", str(tmp / "r"), "--notebook", "../README.md"], "notebook"),
        "report notebook missing": (["report", "--out", str(tmp / "r"), "--notebook", "zz.ipynb"], "not found"),
        "report timeout 0": (["report", "--timeout", "0"], "--timeout"),
        "report timeout inf": (["report", "--timeout", "inf"], "--timeout"),
    }


def classify_cli(argv, needle) -> tuple[str, str]:
    from training.cli import main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if code == 0:
        return "silent", out.getvalue()[:200]
    one = len(lines) == 1 and lines[0].startswith("xbar: error: ") and needle in lines[0]
    return ("clear" if code == 2 and one else "unclear"), " | ".join(lines)[:400]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MEMXBAR_DEBUG", raising=False)


@pytest.mark.parametrize("name", list(cli_cases(Path("/nonexistent"), write=False)))
def test_training_cli_hostile_input_is_one_line_exit_2(name, tmp_path):
    argv, needle = cli_cases(tmp_path)[name]
    outcome, detail = classify_cli(argv, needle)
    assert outcome == "clear", f"{name}: {outcome}: {detail}"


# ------------------------------------------------------------------ hypothesis: malformed TOML tables
#: values of every TOML type (and a few non-finite floats TOML also allows: nan, inf)
TOML_VALUES = st.one_of(
    st.text(max_size=8), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1), st.booleans(),
    st.sampled_from([0.0, -1.0, 1e300, math.nan, math.inf, -math.inf, 0.5]),
    st.dates(min_value=datetime.date(1970, 1, 1)), st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
SECTIONS = {
    "data": ["dataset", "batch_size", "eval_batch_size", "split_seed", "test_fraction"],
    "train": ["epochs", "lr", "optimizer", "weight_decay", "momentum", "schedule", "threads", "method",
              "conversion_percentile"],
    "evaluate": ["modes", "times", "time_steps", "steps_time", "repeats", "families"],
    "network": ["hidden", "neuron", "tau_mem", "v_th", "time_steps", "dt", "encoding", "readout"],
    "hardware": ["mode", "family", "tile_rows", "tile_cols", "dac_bits", "adc_bits", "train_noise", "g_max"],
    None: ["name", "seed"],
}


@st.composite
def malformed_configs(draw):
    """A config whose every section may hold keys of any TOML type (mostly wrong ones)."""
    values = {}
    for section, keys in SECTIONS.items():
        chosen = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))
        table = {key: draw(TOML_VALUES) for key in chosen}
        if section is None:
            values.update(table)
        elif table or draw(st.booleans()):
            values[section] = draw(st.one_of(st.just(table), TOML_VALUES)) if draw(st.integers(0, 9)) == 0 else table
    return values


@settings(max_examples=150, deadline=None)
@given(malformed_configs())
def test_malformed_configs_are_accepted_or_clear_errors(values):
    """Any TOML-typed value in any section: either a valid config or one ValueError line —
    never a TypeError/AttributeError/OverflowError traceback."""
    try:
        cfg = RunConfig.from_dict(values)
    except ValueError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), str(exc)
        return
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------ tally
def tally() -> dict:
    import tempfile

    counts, bad = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        results = [(f"config: {s or 'run'}.{k}={v!r}", *classify_config(s, k, v, n)) for s, k, v, n in CONFIG_CASES]
        results += [(f"cli: {k}", *classify_cli(*v)) for k, v in cli_cases(Path(tmp)).items()]
    for name, outcome, detail in results:
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome != "clear":
            bad.append(f"{name}: {outcome}: {detail}")
    return {"tried": sum(counts.values()), **counts, "not clear": bad}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.pop("MEMXBAR_DEBUG", None)
    result = tally()
    for line in result.pop("not clear"):
        print(line)
    print(result)

"""The example notebook, executed by a real Jupyter kernel as a reader would run it: it
must run, show the job's progress in place and the result as a table, and plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOK = REPOSITORY / "docs" / "examples" / "notebook.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel of this interpreter (the installed kernelspec would run ``python`` from
    PATH), with the repository on its path and its own job book."""
    spec = tmp_path / "jupyter" / "kernels" / "mcpi-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "mcpi tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    monkeypatch.setenv("MCPI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.delenv("MCPI_BROKER_URL", raising=False)
    monkeypatch.delenv("MCPI_CONFIG", raising=False)
    return "mcpi-test"


def outputs(cell: Any) -> list[dict[str, Any]]:
    return [dict(o) for o in cell.get("outputs", [])]


def test_the_example_notebook_runs_and_shows_progress_a_table_and_a_plot(
    kernel: str, tmp_path: Path
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Run where a reader's notebook would be: the files it writes go there.
    client = nbclient.NotebookClient(
        notebook, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in outputs(c) if o["output_type"] == "error"]
    assert errors == []

    job = next(c for c in cells if "mcpi.run(" in c.source)
    shown = outputs(job)
    progress = [o for o in shown if o["output_type"] == "display_data"]
    # One progress line, updated in place (not a line per redraw), ending "done".
    assert len(progress) == 1
    assert "mcpi-progress" in progress[0]["data"]["text/html"]
    assert "done: 2e+07 samples" in progress[0]["data"]["text/html"]
    table = next(o for o in shown if o["output_type"] == "execute_result")["data"]["text/html"]
    assert "<caption>mcpi cosine" in table and "<td>cos</td>" in table

    sweep = next(c for c in cells if "mcpi.sweep(" in c.source)
    (line,) = [o for o in outputs(sweep) if o["output_type"] == "display_data"]
    assert "6/6 jobs  done: 1.2e+07 samples" in line["data"]["text/html"]
    frame = next(o for o in outputs(sweep) if o["output_type"] == "execute_result")
    assert "cos_ci_low" in frame["data"]["text/html"]  # the DataFrame, one row per scale

    plot = cells[-1]
    assert any("image/png" in o.get("data", {}) for o in outputs(plot))

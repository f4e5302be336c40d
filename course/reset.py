"""``course reset NOTEBOOK EXERCISE_ID``: put one exercise cell back to its stub.

Only that cell changes (its source becomes the stub `course build` wrote, its outputs are
cleared); what it held is first saved beside the notebook as a .py file. The stub comes from
the build record (``chapters/.built.json``) next to the notebook, else from the one installed
with the package, so this works in a student release without solutions.
"""
from __future__ import annotations

import time
from pathlib import Path

from .build import MANIFEST, read_manifest
from .notebook import NotebookError, cell_source, dumps, exercise_id, load_notebook_json
from .paths import PACKAGE_ROOT


def find_stub(notebook: Path, ex_id: str) -> str | None:
    for folder in (notebook.resolve().parent, PACKAGE_ROOT / "chapters"):
        record = read_manifest(folder)
        entries = [record.get(notebook.name)] + [v for k, v in sorted(record.items())
                                                  if k != notebook.name]
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("stubs"), dict) \
                    and isinstance(entry["stubs"].get(ex_id), str):
                return entry["stubs"][ex_id]
    return None


def reset_exercise(notebook: Path, ex_id: str) -> tuple[Path, Path]:
    """Reset one exercise cell; returns (notebook, the file that keeps the replaced source)."""
    nb, _ = load_notebook_json(notebook)
    cells = [c for c in nb["cells"] if exercise_id(c) == ex_id]
    if not cells:
        known = sorted({e for c in nb["cells"] if (e := exercise_id(c))})
        raise NotebookError(f"{notebook}: no exercise cell {ex_id!r} (its exercises: "
                            f"{', '.join(known) or 'none'})")
    stub = find_stub(notebook, ex_id)
    if stub is None:
        raise NotebookError(f"{notebook}: no stub of {ex_id} recorded in {MANIFEST} beside it or "
                            "in the installed course")
    cell = cells[0]
    keep = notebook.with_name(f"{notebook.stem}.{ex_id}.{time.strftime('%Y%m%d-%H%M%S')}.py")
    keep.write_text(cell_source(cell), encoding="utf-8")
    cell["source"] = stub
    cell["outputs"] = []
    cell["execution_count"] = None
    import nbformat

    notebook.write_text(dumps(nbformat.from_dict(nb)), encoding="utf-8")
    return notebook, keep


def main(notebook: str, ex_id: str) -> int:
    import sys

    try:
        nb, keep = reset_exercise(Path(notebook), ex_id)
    except (NotebookError, OSError) as e:
        print(f"course reset: {e}", file=sys.stderr)
        return 1
    print(f"course reset: {ex_id} in {nb} is back to its stub; what the cell held is saved in "
          f"{keep}.\nIf the notebook is open in JupyterLab, reload it (File > Reload Notebook from "
          "Disk) before you save it again.")
    return 0




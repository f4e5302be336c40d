"""The two ways to install the course name the same dependencies, and the README's commands exist."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_dependencies() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    if sys.version_info >= (3, 11):
        import tomllib
        data = tomllib.loads(text)
        deps = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    else:  # Python 3.10 has no tomllib: read the two quoted lists
        blocks = re.findall(r"^(?:dependencies|test) = \[(.*?)\]", text, re.S | re.M)
        deps = [d for block in blocks for d in re.findall(r'"([^"]+)"', block)]
    return {_name(d) for d in deps}


def conda_dependencies() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)  # top-level conda entries (pip's are indented more)
        if m and m.group(1) not in ("python", "pip"):
            names.add(_name(m.group(1)))
    return names


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    assert pyproject_dependencies() == conda_dependencies()
    assert {"numpy", "matplotlib", "ipywidgets", "jupyterlab", "nbval", "pytest", "hypothesis",
            "playwright"} == pyproject_dependencies()


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "python3 start.py lab" in readme and "python3 start.py test" in readme
    assert "python3 start.py test" in (ROOT / ".ci" / "run").read_text()


def test_nnlib_does_not_import_the_course_tool_or_matplotlib_at_import_time():
    import subprocess
    import sys
    code = "import sys, nnlib; import nnlib.gradcheck; print('course' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    for path in (ROOT / "nnlib").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+course\b", path.read_text(), re.M), path


def _specifiers(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.strip()[len(_name(r)):].replace(" ", "") for r in requirements}


def test_every_dependency_is_bounded_and_both_files_say_the_same_range():
    """The committed outputs were produced inside these ranges; a new major or minor release may
    change printed digits, so each has an upper bound, the same for pip and conda users."""
    text = (ROOT / "pyproject.toml").read_text()
    blocks = re.findall(r"^(?:dependencies|test) = \[(.*?)\]", text, re.S | re.M)
    pip = _specifiers([d for block in blocks for d in re.findall(r'"([^"]+)"', block)])
    yml = (ROOT / "environment.yml").read_text()
    deps = yml[yml.index("\ndependencies:"):]
    conda = _specifiers([m for m in re.findall(r"^  - ([A-Za-z].*)$", deps, re.M)
                         if _name(m) not in ("python", "pip", "pip:")])
    assert pip == conda
    for name, spec in pip.items():
        assert ">=" in spec and "<" in spec.replace("<=", ""), f"{name}{spec} has no range"
    import numpy
    import matplotlib
    for mod in (numpy, matplotlib):
        lo, hi = re.findall(r">=([\d.]+),<([\d.]+)", pip[mod.__name__])[0]
        version = tuple(int(x) for x in mod.__version__.split(".")[:2])
        assert tuple(map(int, lo.split("."))) <= version < tuple(map(int, hi.split("."))), mod.__version__


def test_start_py_shows_pips_progress_and_steps(monkeypatch, tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("start_under_test", ROOT / "start.py")
    start = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(start)
    calls = []
    monkeypatch.setattr(start, "VENV", tmp_path / "venv")
    monkeypatch.setattr(start, "PY", tmp_path / "venv" / "bin" / "python")
    monkeypatch.setattr(start, "STAMP", tmp_path / "venv" / ".stamp")
    monkeypatch.setattr(start.venv, "EnvBuilder", lambda **kw: type("B", (), {"create": lambda self, p: (tmp_path / "venv" / "bin").mkdir(parents=True) or (tmp_path / "venv" / "bin" / "python").touch()})())
    monkeypatch.setattr(start, "run", lambda *cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    start.ensure_environment("test")
    out = capsys.readouterr().out
    assert "step 1 of 2" in out and "step 2 of 2" in out and "pip prints each package" in out
    (pip,) = calls
    assert "install" in pip and "--quiet" not in pip and "-q" not in pip


def test_readme_chapter_table_is_the_chapters_metadata():
    from course.build import chapter_table
    table = chapter_table(sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")), "chapters/")
    assert table in (ROOT / "README.md").read_text()

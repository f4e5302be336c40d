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
    assert {"numpy", "matplotlib", "ipywidgets", "jupyterlab", "nbval", "pytest", "hypothesis"} == pyproject_dependencies()


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

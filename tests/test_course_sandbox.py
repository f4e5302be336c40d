"""The sandbox's reading of untrusted results, its modes, and its process cleanup."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import course.sandbox as sb
from course.grade import grade_paths

FIXTURES = Path(__file__).parent / "fixtures"
LIMIT = 2**20


def npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_plain_arrays_load() -> None:
    out = sb.load_npz_safely(npz(a=np.arange(3.0), b=np.array("text"), c=np.array([True])), LIMIT)
    assert out["a"].tolist() == [0.0, 1.0, 2.0] and out["b"].item() == "text"


@pytest.mark.parametrize("data, words", [
    (npz(a=np.array([object()], dtype=object)), "not accepted"),
    (npz(a=np.zeros(3, dtype=[("x", "f8")])), "not accepted"),
    (b"PK\x03\x04 not a zip", "unreadable result"),
])
def test_dangerous_or_broken_results_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        sb.load_npz_safely(data, LIMIT)


def test_compressed_and_lying_members_are_refused() -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros(10))
    with pytest.raises(ValueError, match="unexpected member"):
        sb.load_npz_safely(buf.getvalue(), LIMIT)
    # a header that claims 10**12 floats but carries 8 bytes
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (10**12,)
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    member.write(b"\0" * 8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.npy", member.getvalue())
    with pytest.raises(ValueError, match="declared size"):
        sb.load_npz_safely(buf.getvalue(), LIMIT)


def test_result_links_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("do not read")
    os.symlink(tmp_path / "secret", tmp_path / "result.json")
    with pytest.raises(ValueError, match="link"):
        sb._read_capped(str(tmp_path / "result.json"), LIMIT)


def test_mode_matches_the_machine() -> None:
    mode = sb.choose_mode()
    if os.geteuid() != 0:
        assert mode == sb.MODE_SAME_USER
    elif sb.namespaces_available():
        assert mode == sb.MODE_NAMESPACES
    elif all(sb._world_accessible(p) for p in sb.interpreter_paths()):
        assert mode == sb.MODE_DROP_ALL
    else:
        assert mode == sb.MODE_READ_CAP


def test_same_user_mode_still_grades(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path used when the grader is not root: no uid change, process-group kill."""
    monkeypatch.setattr(sb, "choose_mode", lambda: sb.MODE_SAME_USER)
    (r,), bad, mode = grade_paths([FIXTURES / "solutions" / "99_fixture.ipynb"],
                                  FIXTURES / "hidden", jobs=2)
    assert mode == sb.MODE_SAME_USER and r.score == r.max_score == 7 and bad == []


def test_the_result_reaches_the_grader_whatever_numbers_its_descriptors_have() -> None:
    """The harness moves the result file, the arrays file and its ready pipe to fds 3, 4 and 5.
    In a fresh grader process the result file is fd 5 (after stdin, stdout, stderr, the job and
    the stderr file), which once made the ready pipe take its place: the result went into the
    pipe, ftruncate failed with EINVAL, and a right answer was reported as crashed. Under
    load, with threads opening files, that numbering happened now and then; here it always does."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "import course.sandbox as sb\n"
        "from course.grade import encode_cases\n"
        "specs, arrays = encode_cases([{'x': np.arange(3.0)}])\n"
        "job = {'code': [], 'needs': [], 'cases': specs, 'max_output_bytes': 2**20,\n"
        "       'call_source': 'def call(ns, inp):\\n    return {\"y\": inp[\"x\"] * 2}\\n',\n"
        "       'call_name': 'call'}\n"
        "box = {'mode': 'plain', 'uid': None, 'keep_read_cap': False, 'seccomp': True, 'timeout': 20,\n"
        "       'root': '', 'binds': [], 'workdir': '/tmp',\n"
        "       'limits': {'cpu': 30, 'as': 2**32, 'fsize': 2**26, 'nproc': 0}}\n"
        "status, err, raw, npz, problem = sb._launch(job, arrays, box, backstop=60)\n"
        "print(status.get('status'), status.get('code'), raw is not None, repr(problem), err[-300:])\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("exited 0 True ''"), r.stdout

"""``python -m course``: the course command, never importing modules from the current folder.

``python -m`` puts the current folder first on sys.path; a folder an instructor grades from (a
student's, say) could hold a numpy.py or an nnlib/ that would then be imported by the grader.
Those entries are removed before anything else is imported. (A folder that holds a ``course/``
package of its own is beyond this: ``python -m course`` would run that one. Use the installed
``course`` command, or ``python -P -m course`` on Python 3.11+, which never adds the folder.)
"""
import os
import sys

_cwd = os.getcwd()
sys.path[:] = [p for p in sys.path if p not in ("", ".", _cwd)]

from .cli import main  # noqa: E402  (after the sys.path fix, on purpose)

raise SystemExit(main())

"""Text that leaves the grader: printable on a terminal and encodable as UTF-8, whatever a
submission (an exception message, a file name, a forged result) put into it."""
from __future__ import annotations

import os
import re
from typing import Any

# C0 and C1 control characters (but newline and tab), DEL, and the bidirectional overrides and
# isolates that can reorder a line on screen; lone surrogates are handled by the encoding step.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any, keep_newlines: bool = True) -> str:
    """Text that is safe to print and to encode as UTF-8, whatever a submission put in it:
    control characters (terminal escape sequences) and bidi overrides become visible escapes
    (``\\x1b``), lone surrogates and undecodable bytes of file names become ``\\udcff``."""
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if keep_newlines else text.replace("\n", " ")

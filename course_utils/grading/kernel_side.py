"""Code the grader runs inside the learner's kernel (its source is embedded in the grader's first cell).

:func:`install` runs before any learner code. It imports a *private* copy of the chapter's checks (and
of every ``course_utils`` module they import) straight from the installed package, snapshots the
functions of ``builtins``, ``math``, ``torch``, ``torch.Tensor`` and ``torch.nn.functional`` (and ``sys.stdout``), and
returns the grading function that the grader's check cells call as ``<name>(exercise, token)``.
That function runs the canonical check source with its checks names bound to the private modules
(the learner's ``checks``, ``course_utils`` and ``sys.modules`` are never consulted), refuses to pass
anything if one of the snapshotted functions was replaced, and prints one result line with the
cell's own random token, signed with the run's key (so a line printed by anything else, e.g. an IPython
input transformer that rewrites the grader's cell, is recognised as forged). The grader reads that line from the cell's output, which the notebook cannot
rewrite once the cell is done (see :mod:`course_utils.grade` for what this does and does not stop).

Only the standard library is imported at module level: the source runs with ``exec``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import importlib
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

MARK = "COURSE-GRADER-RESULT"
# names IPython and ipykernel themselves rebind in builtins around every cell
_VOLATILE_BUILTINS = {"exit", "quit", "get_ipython", "display", "input", "_", "__", "___"}


def _ours(name: str) -> bool:
    return name == "course_utils" or name.startswith("course_utils.")


def _snapshot(objs: dict[str, Any]) -> dict[str, dict[str, int]]:
    out = {}
    for label, obj in objs.items():
        out[label] = {k: id(v) for k, v in vars(obj).items()
                      if (callable(v) or isinstance(v, type)) and not (label == "builtins" and k in _VOLATILE_BUILTINS)}
    return out


def sign(key: str, token: str, payload: str) -> str:
    """The result line's signature (HMAC-SHA256 under the run's key, which only the grader knows)."""
    return hmac.new(key.encode(), f"{token} {payload}".encode(), hashlib.sha256).hexdigest()


def install(package_parent: str, bindings: dict[str, str], check_sources: dict[str, str],
            user_ns: dict[str, Any], key: str) -> Callable[[str, str], None]:
    """Load private checks from ``package_parent`` and return ``grade(exercise, token)``."""
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _ours(k)]}
    old_path = list(sys.path)
    sys.path.insert(0, package_parent)  # never a course_utils planted next to the submission
    try:
        modules = {name: importlib.import_module(mod) for name, mod in bindings.items()}
        private = {k: sys.modules[k] for k in list(sys.modules) if _ours(k)}
    finally:
        sys.path[:] = old_path
        for k in [k for k in sys.modules if _ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
    check_failed = private["course_utils.checks._core"].CheckFailed

    import torch  # the checks imported it already

    watched = {"builtins": builtins, "math": math, "torch": torch, "torch.Tensor": torch.Tensor,
               "torch.nn.functional": torch.nn.functional}
    snapshot = _snapshot(watched)
    stdout = sys.stdout
    write, flush, dumps, perf, sign_ = stdout.write, stdout.flush, json.dumps, time.perf_counter, sign
    gettrace, getprofile, dict_, exec_, compile_ = sys.gettrace, sys.getprofile, dict, exec, compile

    def tampered() -> str:
        if sys.stdout is not stdout:
            return "sys.stdout"
        if gettrace() is not None or getprofile() is not None:
            return "a trace/profile hook (sys.settrace)"
        for label, obj in watched.items():
            now = vars(obj)
            for k, ident in snapshot[label].items():
                if k not in now or id(now[k]) != ident:
                    return f"{label}.{k}"
        return ""

    def swap(into: dict[str, Any]) -> dict[str, Any]:
        out = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _ours(k)]}
        sys.modules.update(into)
        return out

    def grade(exercise: str, token: str) -> None:
        t0 = perf()
        problem = tampered()
        if not problem:
            ns = dict_(user_ns)
            ns.update(modules)
            learner = swap(private)
            try:
                exec_(compile_(check_sources[exercise], f"<course check {exercise}>", "exec"), ns)
                rec = {"status": "passed", "message": ""}
            except check_failed as err:
                rec = {"status": "failed", "message": str(err)}
            except NotImplementedError as err:
                rec = {"status": "not attempted", "message": str(err)}
            except BaseException as err:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... all count as failed
                rec = {"status": "failed", "message": f"{type(err).__name__}: {err}"}
            finally:
                private.update(swap(learner))
            problem = tampered()
        if problem:
            rec = {"status": "failed", "message": f"the notebook replaced {problem}; the grader does not pass "
                                                  "notebooks that patch builtins, torch or the output"}
        rec.update(exercise=exercise, seconds=round(perf() - t0, 3))
        payload = dumps(rec)
        write(f"\n{MARK} {token} {sign_(key, token, payload)} {payload}\n")
        flush()

    return grade

"""JupyterLab on the whole course, in the .venv's Python (``make lab``); no npm, no website assets.

The server's root is the repository, so the file browser holds ``notebooks/`` (the chapters as
notebooks, with live explorers), ``exercises/`` and ``solutions/``; it opens on ``notebooks/``.
``PATH`` starts with the virtualenv's ``bin``, so ``python`` and ``course-grade`` in a JupyterLab
terminal and in ``!`` cells are the ones that have the course installed.

    python tools/lab.py [--port N] [--no-browser] [extra jupyter-lab arguments...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lab_env(python: Path = Path(sys.executable)) -> dict[str, str]:
    """The environment of the server (and so of its kernels and terminals)."""
    bin_dir = str(Path(python).parent)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([bin_dir, *[p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir]])
    env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    env["COURSE_VENV_BIN"] = bin_dir  # read by tools/lab_bashrc
    env.pop("PYTHONHOME", None)
    return env


def lab_command(port: int | None = None, open_browser: bool = True, extra: list[str] | None = None,
                python: Path = Path(sys.executable), root: Path = ROOT) -> list[str]:
    cmd = [str(python), "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
           "--LabApp.default_url=/lab/tree/notebooks"]
    if port is not None:
        cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        cmd.append("--no-browser")
    # terminals: never a login shell (/etc/profile resets PATH); bash reads the user's ~/.bashrc and then
    # puts the venv first again (tools/lab_bashrc)
    shell = os.environ.get("SHELL") or "/bin/sh"
    argv = [shell, "--rcfile", str(ROOT / "tools" / "lab_bashrc")] if Path(shell).name == "bash" else [shell]
    cmd.append("--ServerApp.terminado_settings=" + json.dumps({"shell_command": argv}))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(extra or [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int)
    p.add_argument("--no-browser", action="store_true")
    args, extra = p.parse_known_args(argv)
    cmd = lab_command(args.port, not args.no_browser, extra)
    os.execve(cmd[0], cmd, lab_env())
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())

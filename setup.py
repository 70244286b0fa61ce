"""Build script: the compiled variant of hardener, when asked for.

``pip install .`` builds a pure-Python wheel and needs no compiler. With ``HARDENER_COMPILE=1``
in the environment, the core that ``plan()`` runs (the engine, the rules, the Pod Security
Standards evaluator and the modules below them) is compiled with mypyc into C extension
modules, as black and mypy ship themselves; the build backend ``_build/hardener_build.py``
then asks for mypy (which brings mypyc) as a build requirement, and only then. The list of
compiled modules, and why the others stay Python, is there too. See docs/build.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "_build"))
from hardener_build import COMPILED, compile_requested

ext_modules: list[Any] = []
if compile_requested():
    from mypyc.build import mypycify

    ext_modules = mypycify(
        [*COMPILED, "--config-file=pyproject.toml"],
        opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
        debug_level=os.environ.get("MYPYC_DEBUG_LEVEL", "1"),
        group_name="hardener",
    )

# The C files compile in parallel, one job per core.
setup(ext_modules=ext_modules, options={"build_ext": {"parallel": os.cpu_count() or 1}})

"""CPU instructions per webhook review, counted by callgrind (a script, not a test).

    python tests/bench/bench_review_instructions.py [--count 200] [--python VENV/bin/python]

Runs the handler's in-process pipeline over the webhook benchmark's AdmissionReview (the
same body ``bench_webhook.py`` posts): decode the body, size the work and list its images
(``_prepare``), harden and answer (``_finish``: the engine, the PSS verdict, the warnings),
encode the response. No HTTP, TLS, log line or metrics: those are the same before and after a
change of the review itself. Each count is ``valgrind --tool=callgrind``'s total for a run of
2N reviews minus one of N, divided by N, so start-up cancels out; it does not vary with the
machine's load, which makes it the figure to compare two commits by. ``--python`` runs the
child under another interpreter (a venv with the compiled build installed), with this
checkout off its path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


def _child(count: int) -> None:
    import json

    sys.path.insert(0, str(HERE.parent))
    from bench_webhook import realistic_review  # type: ignore[import-not-found]

    if os.environ.get("BENCH_INSTALLED") == "1":
        # bench_webhook put this checkout on the path: the other interpreter's own install
        # of hardener is the one to count.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    import hardener
    from hardener.config import default_config
    from hardener.webhook import encode_review
    from hardener.webhook._app import _finish, _prepare
    from hardener.webhook._review import ReviewWork

    config = default_config()
    body = json.dumps(realistic_review()).encode()

    def one() -> None:
        prepared, _names = _prepare(body, config)
        assert isinstance(prepared, ReviewWork)
        result = _finish(prepared, config, deadline=float("inf"), support=None)
        assert result.outcome == "patched", result.outcome
        encode_review(result.response)

    print(f"hardener from {Path(hardener.__file__).parent}", file=sys.stderr)
    for _ in range(20):  # warm-up: imports, caches
        one()
    for _ in range(count):
        one()


def _instructions(python: str, count: int, env: dict[str, str], work: Path) -> int:
    out = work / f"callgrind-{count}.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            python,
            str(HERE),
            "--child",
            str(count),
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=work,
    )
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200, help="reviews in the shorter run")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the child")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian package valgrind)")
    env = dict(os.environ)
    if args.python == sys.executable:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)  # the other interpreter's own install of hardener
        env["BENCH_INSTALLED"] = "1"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        short = _instructions(args.python, args.count, env, work)
        long = _instructions(args.python, 2 * args.count, env, work)
    print(f"instructions per review: {(long - short) / args.count:,.0f}")


if __name__ == "__main__":
    main()

"""The fixer's work on the corpus, for counting instructions with callgrind (a script).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=OUT \\
        python tests/bench/bench_fix_instructions.py [--corpus ../shared/corpus] [--passes 1]

One pass is what ``bench_fix.py`` times, in one process: ``fix_text`` on every corpus file
(the fast reader, the engine, and for a file that changes the full reader, the text editor and
the read-back), then deciding "no change" on the hardened texts through the fast path and
through ``SourceFile.parse``. Timings on a shared machine vary by up to 50%; instruction counts
do not. Run it with ``--passes 0`` too and take the difference: that is the cost of one pass
without the interpreter's start and the imports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parent))

from bench_fix import decide  # noqa: E402

from hardener.fixer.files import collect_paths  # noqa: E402
from hardener.fixer.run import FixOptions, fix_text  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE.parents[3] / "shared" / "corpus")
    parser.add_argument("--passes", type=int, default=1)
    args = parser.parse_args()
    paths = collect_paths([str(args.corpus)]).files
    texts = [Path(p).read_bytes().decode("utf-8") for p in paths]
    changed = 0
    for _ in range(args.passes):
        results = [
            fix_text(text, path, FixOptions(write=False))
            for text, path in zip(texts, paths, strict=True)
        ]
        hardened = [
            r.fixed if r.fixed is not None else t for r, t in zip(results, texts, strict=True)
        ]
        decide(hardened, fast_path=True)
        decide(hardened, fast_path=False)
        changed = sum(r.changed for r in results)
    print(f"{len(paths)} files, {changed} changed per pass, {args.passes} passes")


if __name__ == "__main__":
    main()

"""Benchmark and fidelity figures for ``hardener fix`` on the manifest corpus (a script).

    python tests/bench/bench_fix.py [--corpus ../shared/corpus] [--repeat 3] [--write]

Records, on every ``*.yaml``/``*.yml``/``*.json`` file of the corpus:

- files changed, lines added and removed, files left byte-identical, files skipped or in error;
- comments before and after (every ``#`` comment fragment, as a multiset: must be equal);
- unrelated lines touched: lines removed or rewritten that are not the line of a value that had
  to change (the bar is zero);
- times, in one run: ``fix --check``; ``fix`` into a scratch copy; a bare ruamel.yaml round trip
  (load and dump, no changes); a PyYAML C-loader load of the same files; ``fix --check`` on the
  already-hardened copy against the C-loader load of that copy; ``fix --check`` with ``-j 2``.

Single-process times are CPU times of this process (other load on the machine counts less);
the ``-j`` comparison needs wall-clock times. Each time is the best of ``--repeat`` runs.
``--write`` replaces the "fix" section of tests/bench/RESULTS.md with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from hardener.cli import main
from hardener.fixer.fastload import FastDocument, load_fast
from hardener.fixer.files import collect_paths
from hardener.fixer.run import FixOptions, fix_text
from hardener.pointer import split
from hardener.results import FileResult

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))
from tests.bench._results import replace_section  # noqa: E402

SECTION = "## fix"
START = "<!-- fix-bench:start -->"
END = "<!-- fix-bench:end -->"
COMMENT = re.compile(r"(?:^|\s)(#.*)$")


# ---------------------------------------------------------------------------------------------
# Timing


def best(repeat: int, fn: Callable[[], object], clock: Callable[[], float]) -> float:
    runs = []
    for _ in range(repeat):
        start = clock()
        fn()
        runs.append(clock() - start)
    return min(runs)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        yield


def run_cli(argv: list[str]) -> int:
    with quiet():
        return main(argv)


def ruamel_round_trip(texts: list[str]) -> int:
    """Load and dump every file with ruamel.yaml's round-trip mode, tuned as fairly as it gets."""
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096
    done = 0
    for text in texts:
        try:
            documents = list(yaml_rt.load_all(text))
            yaml_rt.dump_all(documents, io.StringIO())
            done += 1
        except Exception:  # a file ruamel cannot round-trip still costs what it cost
            pass
    return done


def c_loader(texts: list[str]) -> int:
    done = 0
    for text in texts:
        try:
            list(yaml.load_all(text, Loader=yaml.CSafeLoader))
            done += 1
        except yaml.YAMLError:
            pass
    return done


# ---------------------------------------------------------------------------------------------
# Fidelity


def comments(text: str) -> Counter[str]:
    """Every ``#`` comment fragment of a text (approximate: a ``#`` after a space inside a
    quoted string counts too, identically before and after, so the comparison still holds)."""
    found: Counter[str] = Counter()
    for line in text.splitlines():
        match = COMMENT.search(line)
        if match is not None:
            found[match.group(1).rstrip()] += 1
    return found


def related_lines(result: FileResult, document_nodes: dict[int, FastDocument]) -> set[int]:
    """0-based lines of the original that a change may rewrite: the line of the deepest
    existing node of each change, and all lines of that node when it is a flow collection or
    a scalar (``securityContext: {}``, ``drop: [NET_RAW]``, ``key: null``)."""
    lines: set[int] = set()
    for record in result.documents:
        document = document_nodes.get(record.index)
        if document is None:
            continue
        for change in record.changes:
            node = document.node
            start = (node.start_mark.line, node.start_mark.line)
            for token in [t for t in split(change.pointer) if t != "-"]:
                child = _child(node, token)
                if child is None:
                    break
                key_line, node = child
                start = (key_line, node.end_mark.line)
            key_line, end_line = start
            lines.add(key_line)
            if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
                lines.update(range(key_line, end_line + 1))
    return lines


def _child(node: yaml.Node, token: str) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == token:
                return key.start_mark.line, value
    elif isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value):
        item = node.value[int(token)]
        return item.start_mark.line, item
    return None


def fidelity(results: list[FileResult]) -> dict[str, Any]:
    changed = [r for r in results if r.changed and not r.error]
    added = removed = unrelated = 0
    comments_before = comments_after = 0
    comment_sets_equal = True
    unrelated_files: list[str] = []
    for result in changed:
        assert result.original is not None and result.fixed is not None
        old = result.original.splitlines()
        new = result.fixed.splitlines()
        before, after = comments(result.original), comments(result.fixed)
        comments_before += sum(before.values())
        comments_after += sum(after.values())
        comment_sets_equal = comment_sets_equal and before == after
        related = related_lines(result, {d.index: d for d in load_fast(result.original)})
        touched = 0
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, old, new, autojunk=False
        ).get_opcodes():
            if tag == "equal":
                continue
            added += j2 - j1
            removed += i2 - i1
            touched += sum(1 for number in range(i1, i2) if number not in related)
        if touched:
            unrelated_files.append(f"{result.path} ({touched})")
        unrelated += touched
    for result in results:  # files that need no change: also count their comments
        if result.original is not None and not result.changed:
            count = sum(comments(result.original).values())
            comments_before += count
            comments_after += count
    return {
        "changed": len(changed),
        "added": added,
        "removed": removed,
        "comments_before": comments_before,
        "comments_after": comments_after,
        "comment_sets_equal": comment_sets_equal,
        "unrelated": unrelated,
        "unrelated_files": unrelated_files,
    }


# ---------------------------------------------------------------------------------------------


def jobs_runs(corpus: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Best wall-clock time and the CPU time of that run (this process and its workers) for
    ``fix --check -j 1`` and ``-j 2``, alternating so both see the same machine load."""
    best_runs: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        for jobs in ("1", "2"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            run_cli(["fix", "--check", "-j", jobs, str(corpus)])
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            children = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            run = (time.perf_counter() - wall_start, time.process_time() - cpu_start + children)
            if jobs not in best_runs or run[0] < best_runs[jobs][0]:
                best_runs[jobs] = run
    return best_runs


def decide(texts: list[str], *, fast_path: bool) -> list[bool]:
    """Which texts ``fix`` would change, without touching any file."""
    options = FixOptions(write=False, fast_path=fast_path)
    return [fix_text(text, "x.yaml", options).changed for text in texts]


def measure(corpus: Path, repeat: int) -> str:
    paths = collect_paths([str(corpus)]).files
    raw = [Path(p).read_bytes() for p in paths]
    texts = [data.decode("utf-8") for data in raw]
    size = sum(len(data) for data in raw)
    results = [
        fix_text(text, path, FixOptions(write=False))
        for text, path in zip(texts, paths, strict=True)
    ]
    figures = fidelity(results)
    errors = [r for r in results if r.error]
    skipped = [r for r in results if r.skipped and not r.error]
    cpu = time.process_time

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "corpus"

        def fix_into_copy() -> None:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(corpus, copy)
            start = cpu()
            run_cli(["fix", str(copy)])
            fix_times.append(cpu() - start)

        fix_times: list[float] = []
        for _ in range(repeat):
            fix_into_copy()
        t_fix = min(fix_times)
        written = sorted(p for p in copy.rglob("*") if p.is_file())
        byte_identical_after_write = sum(
            1
            for p in written
            if (corpus / p.relative_to(copy)).read_bytes() == p.read_bytes()
            and p.suffix in (".yaml", ".yml", ".json")
        )
        hardened_texts = [
            p.read_bytes().decode("utf-8")
            for p in written
            if p.suffix in (".yaml", ".yml", ".json")
        ]
        t_check = best(repeat, lambda: run_cli(["fix", "--check", str(corpus)]), cpu)
        t_fast = best(repeat, lambda: decide(hardened_texts, fast_path=True), cpu)
        t_full = best(repeat, lambda: decide(hardened_texts, fast_path=False), cpu)
        still_changing = sum(decide(hardened_texts, fast_path=True))
        t_ruamel = best(repeat, lambda: ruamel_round_trip(texts), cpu)
        t_c = best(repeat, lambda: c_loader(texts), cpu)
        t_check_hardened = best(repeat, lambda: run_cli(["fix", "--check", str(copy)]), cpu)
        t_c_hardened = best(repeat, lambda: c_loader(hardened_texts), cpu)
        load_before = os.getloadavg()[0]
        parallel = jobs_runs(corpus, repeat)
        load_after = os.getloadavg()[0]
        (w_j1, c_j1), (w_j2, c_j2) = parallel["1"], parallel["2"]

    mb = size / 1e6
    lines = [
        SECTION,
        "",
        f"`python tests/bench/bench_fix.py` on `../shared/corpus`: {len(paths)} files, "
        f"{mb:.1f} MB; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; best of {repeat} runs; CPU time of one process unless noted.",
        "",
        "Fidelity:",
        "",
        "| figure | value |",
        "|---|---|",
        f"| files changed | {figures['changed']} |",
        f"| lines added / removed | {figures['added']} / {figures['removed']} |",
        f"| files left byte-identical (after writing) | {byte_identical_after_write} |",
        f"| files skipped (Helm templates, Kustomize patches) | {len(skipped)} |",
        f"| files in error (duplicate keys), left untouched | {len(errors)} |",
        f"| `#` comments before / after | {figures['comments_before']} / "
        f"{figures['comments_after']} (same multiset in every file: "
        f"{'yes' if figures['comment_sets_equal'] else 'NO'}) |",
        f"| unrelated lines touched (bar: 0) | {figures['unrelated']} |",
        f"| files that would change again after the fix (idempotence) | {still_changing} |",
        "",
        "Times:",
        "",
        "| run | seconds | MB/s | vs. |",
        "|---|---|---|---|",
        f"| `fix --check` | {t_check:.2f} | {mb / t_check:.2f} | {t_check / t_c:.1f}x C-loader |",
        f"| `fix` into a scratch copy | {t_fix:.2f} | {mb / t_fix:.2f} | "
        f"{t_fix / t_ruamel:.2f}x ruamel round trip (target: at most 1x) |",
        f"| bare ruamel.yaml round trip (load + dump) | {t_ruamel:.2f} | {mb / t_ruamel:.2f} | |",
        f"| PyYAML C-loader load | {t_c:.2f} | {mb / t_c:.2f} | |",
        f"| `fix --check` on the hardened copy | {t_check_hardened:.2f} | "
        f"{mb / t_check_hardened:.2f} | {t_check_hardened / t_c_hardened:.2f}x C-loader "
        "(target: within 3x) |",
        f"| C-loader load of the hardened copy | {t_c_hardened:.2f} | {mb / t_c_hardened:.2f} | |",
        f'| deciding "no change" on the hardened copy, fast path (library) | {t_fast:.2f} | '
        f"{mb / t_fast:.2f} | {t_fast / t_c_hardened:.2f}x C-loader |",
        f"| same, every file through `SourceFile.parse` (library) | {t_full:.2f} | "
        f"{mb / t_full:.2f} | {t_full / t_fast:.2f}x the fast path |",
        "",
        "Processes (`fix --check` on the corpus; wall clock, and the CPU time of the parent and "
        "its workers together; runs of `-j 1` and `-j 2` alternate):",
        "",
        "| run | wall seconds | CPU seconds |",
        "|---|---|---|",
        f"| `-j 1` | {w_j1:.2f} | {c_j1:.2f} |",
        f"| `-j 2` | {w_j2:.2f} | {c_j2:.2f} |",
        "",
        f"Speed-up with `-j 2`: {w_j1 / w_j2:.2f}x wall clock; the work itself grows by "
        f"{(c_j2 / c_j1 - 1) * 100:+.0f}% CPU, so with two idle CPUs the speed-up is near "
        f"{2 * c_j1 / c_j2:.1f}x. Load average during these runs: {load_before:.1f} before, "
        f"{load_after:.1f} after, on {os.cpu_count()} CPUs shared with other processes, which "
        "is what limits the wall-clock figure.",
        "",
    ]
    if figures["unrelated_files"]:
        lines += ["Files with unrelated lines touched:", ""]
        lines += [f"- {name}" for name in figures["unrelated_files"]]
        lines.append("")
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace (or append) the fix section of RESULTS.md, between its markers, leaving the
    other sections as they are."""
    replace_section(START, END, section)


def main_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update tests/bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    section = measure(args.corpus, args.repeat)
    print(section)
    if args.write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())

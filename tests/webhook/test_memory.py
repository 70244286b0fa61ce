"""``hardener serve`` gives the memory of large blocks back to the system once freed, so a
hostile body of a few MiB does not leave the process that much larger for good."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from tests._shared import ROOT as REPO

_RETAINED = textwrap.dedent(
    """
    import sys
    from hardener.webhook._server import tune_malloc

    def rss_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    tuned = sys.argv[1] == "tuned" and tune_malloc()
    base = rss_kib()
    for _ in range(3):
        body = b"x" * (4 << 20)  # a 4 MiB block, freed at once
        del body
    print(int(tuned), rss_kib() - base)
    """
)


def _retained_kib(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _RETAINED, mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
    ).stdout.split()
    return out[0] == "1", int(out[1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the malloc tuning is glibc's; RSS is read from /proc",
)
def test_large_blocks_go_back_to_the_system_once_freed() -> None:
    tuned, kept = _retained_kib("tuned")
    assert tuned
    # Untuned, glibc keeps the 4 MiB block in the heap after the first free (its threshold
    # for mapping blocks on their own has risen to that size): said when the assertion fails.
    assert kept < 1024, (kept, _retained_kib("default")[1])

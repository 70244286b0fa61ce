"""The ``--format html`` page, loaded from disk by a real headless Chromium.

The figures are read back from the DOM Chromium built; a recording proxy that every request of
the browser goes through shows the page fetches nothing; a hostile value in a manifest stays
text. Each browser-side check is paired with a control page that must trip it, so none of them
can pass by not looking. A screenshot goes to ``tests/artifacts/`` for a person to look at.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hardener.fixer.files import collect_paths
from hardener.fixer.run import CheckOptions, FixOptions, check_file, fix_text
from hardener.report import render
from hardener.results import FileResult
from tests._shared import shared

HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[0] / "artifacts"
FALLBACK = HERE / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CSP = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n')
HOSTILE = "</script><img src=x onerror=\"document.title='pwned'\">"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium')"
)

# Chromium's own services, which it calls whatever page is open (component updates, network
# time, sign-in); a page's own request never goes to these exact endpoints.
BROWSER_OWN = {
    "CONNECT accounts.google.com:443",
    "CONNECT update.googleapis.com:443",
    "POST http://update.googleapis.com/service/update2/json",
    "GET http://clients2.google.com/time/1/current",
}

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp_path: Path, page: Path, *extra: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(tmp_path: Path, page: Path, *extra: str) -> str:
    return chromium(tmp_path, page, "--dump-dom", *extra)


def _corpus_results() -> list[FileResult]:
    root = shared("corpus") or FALLBACK
    collected = collect_paths([str(root)], [])
    assert not collected.missing
    return [check_file(path, CheckOptions()) for path in collected.files]


@pytest.fixture(scope="module")
def corpus_results() -> list[FileResult]:
    return _corpus_results()


@pytest.fixture(scope="module")
def corpus_page(corpus_results: list[FileResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("page") / "check.html"
    page.write_text(render(corpus_results, "html", command="check", version="test"), "utf-8")
    return page


def figure(dom: str, name: str) -> int:
    match = re.search(rf'id="fig-{name}">(\d+)<', dom)
    assert match, f"figure {name} missing from the DOM"
    return int(match.group(1))


def test_figures_in_the_rendered_dom(
    corpus_results: list[FileResult], corpus_page: Path, tmp_path: Path
) -> None:
    dom = dump_dom(tmp_path, corpus_page)
    documents = [
        d
        for r in corpus_results
        if not r.error
        for d in r.documents
        if not d.skipped and d.kind and d.holds_pods
    ]
    assert documents, "the corpus gave no workload"
    assert figure(dom, "workloads") == len(documents)
    assert figure(dom, "pass-now") == sum(1 for d in documents if not d.findings)
    assert figure(dom, "pass-after") == sum(
        1 for d in documents if all(f.fixable for f in d.findings)
    )
    assert figure(dom, "need-person") == sum(
        1 for d in documents if any(not f.fixable for f in d.findings)
    )
    # The heat map's columns add up to the violations by check of the run.
    for check in {f.check_or_rule for d in documents for f in d.findings}:
        cells = re.findall(rf'data-check="{re.escape(check)}"[^>]*>(\d+) → (\d+)<', dom)
        assert cells, check
        now = sum(int(a) for a, _ in cells)
        after = sum(int(b) for _, b in cells)
        assert now == sum(1 for d in documents for f in d.findings if f.check_or_rule == check)
        assert after == sum(
            1 for d in documents for f in d.findings if f.check_or_rule == check and not f.fixable
        )
    assert "<h2" in dom and "<th scope=" in dom  # real headings and tables


def test_fix_page_has_the_same_verdicts_and_its_diffs(
    corpus_results: list[FileResult], tmp_path: Path
) -> None:
    """``fix`` knows only what remains after hardening; its "now" comes from the changes and
    must agree with what ``check`` evaluated on the original objects."""
    fixed = [
        fix_text(r.original, r.path, FixOptions(write=False))
        for r in corpus_results
        if r.original is not None
    ]
    page = tmp_path / "fix.html"
    page.write_text(render(fixed, "html", command="fix", version="t", after_fix=True), "utf-8")
    dom = dump_dom(tmp_path, page)
    documents = [
        d
        for r in corpus_results
        if not r.error
        for d in r.documents
        if not d.skipped and d.kind and d.holds_pods
    ]
    assert figure(dom, "pass-now") == sum(1 for d in documents if not d.findings)
    assert figure(dom, "pass-after") == sum(
        1 for d in documents if all(f.fixable for f in d.findings)
    )
    assert figure(dom, "changes") == sum(len(d.changes) for r in fixed for d in r.documents)
    assert "<details>" in dom and '<span class="add">+' in dom


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str]

    def _record(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP proxy that records every request the browser sends through it."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _through(proxy_url: str) -> tuple[str, ...]:
    # Every request, loopback included, goes to the recording proxy; names resolve nowhere.
    return (
        f"--proxy-server={proxy_url}",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    )


def _page_requests(hits: list[str], browser_own: set[str]) -> list[str]:
    """The requests that are not the browser's own traffic (its update, time and sign-in
    services call out whatever page is open: seen here with an empty page)."""
    return [hit for hit in hits if _target(hit) not in browser_own]


def _target(hit: str) -> str:
    method, url = hit.split(" ", 1)
    return f"{method} {url.split('?', 1)[0]}"


def test_no_request_leaves_the_page(
    corpus_page: Path, tmp_path: Path, proxy: tuple[str, list[str]]
) -> None:
    proxy_url, hits = proxy
    empty = tmp_path / "empty.html"
    empty.write_text("<p>empty</p>", "utf-8")
    dump_dom(tmp_path, empty, *_through(proxy_url))
    browser_own = {_target(hit) for hit in hits} | BROWSER_OWN
    assert all("invalid" not in target for target in browser_own)
    hits.clear()
    # The control: a page that fetches is seen by the proxy.
    control = tmp_path / "control.html"
    control.write_text('<img src="http://hardener.invalid/x.png"><p>control</p>', "utf-8")
    dump_dom(tmp_path, control, *_through(proxy_url))
    assert any("hardener.invalid" in hit for hit in _page_requests(hits, browser_own)), hits
    hits.clear()
    # The report, with its Content-Security-Policy removed so that the markup alone is judged.
    source = corpus_page.read_text("utf-8")
    assert CSP.search(source), "the page lost its Content-Security-Policy"
    open_page = tmp_path / "no-csp.html"
    open_page.write_text(CSP.sub("", source), "utf-8")
    dom = dump_dom(tmp_path, open_page, *_through(proxy_url))
    assert "fig-workloads" in dom
    assert _page_requests(hits, browser_own) == []
    assert not re.search(r'(?:src|href|action)="(?!#)', dom), "a link or source leaves the page"
    assert "<script" not in dom


def _hostile_page(tmp_path: Path) -> Path:
    manifest = tmp_path / "hostile.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n"
        f"  name: '{HOSTILE.replace(chr(39), chr(39) * 2)}'\n"
        f"  labels:\n    app: '{HOSTILE.replace(chr(39), chr(39) * 2)}'\n"
        "spec:\n  containers:\n"
        f"  - name: '{HOSTILE.replace(chr(39), chr(39) * 2)}'\n"
        "    image: nginx\n    securityContext:\n      privileged: true\n",
        "utf-8",
    )
    result = check_file(str(manifest), CheckOptions())
    assert not result.error, result.error
    page = tmp_path / "hostile.html"
    page.write_text(CSP.sub("", render([result], "html", command="check", version="t")), "utf-8")
    return page


def test_hostile_value_stays_text(tmp_path: Path) -> None:
    page = _hostile_page(tmp_path)
    # The control: the same markup, unescaped, runs its handler in this browser.
    control = tmp_path / "control.html"
    control.write_text(f"<title>safe</title><p>{HOSTILE}</p>", "utf-8")
    assert "<title>pwned</title>" in dump_dom(tmp_path, control)

    dom = dump_dom(tmp_path, page)
    assert "pwned</title>" not in dom
    assert "<title>hardener check: restricted posture</title>" in dom
    assert "<img" not in dom
    assert html.escape(HOSTILE, quote=False) in dom


def test_screenshot(corpus_page: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, corpus_page, f"--screenshot={shot}", "--window-size=1280,1600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

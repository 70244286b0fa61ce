"""The serving certificate, reloaded from its files when they change, with no restart.

cert-manager (or ``kubectl create secret ... | apply``) rotates the certificate by rewriting the
mounted Secret; the kubelet swaps the files in with a symlink flip. ``CertReloader`` notices that
on the next TLS handshake:

- the listening socket keeps one *front* ``SSLContext`` for its whole life; its
  ``sni_callback`` runs at every ClientHello (with or without SNI, so also for clients that
  connect by IP address), before the server picks its certificate;
- the callback looks at the files, at most once every ``check_interval`` seconds: their
  identity (device, inode, size, mtime, ctime) and a SHA-256 of their content. A renewed
  certificate copied over the old one in place (``cp -p``) keeps the inode, the size (the
  same key and CA give a certificate of the same size) and the mtime, so only the content
  (and the ctime) tell it apart. When anything changed it builds a new ``SSLContext``;
- it then points the handshake at the newest context (``SSLObject.context = ...``), so the new
  certificate is served from the next connection on.

Connections already open keep the certificate they were set up with and carry on: nothing is
closed, so no request is dropped. A reload that fails (the key written after the certificate,
a half-written file) keeps serving the previous certificate and is retried as soon as the files
change again; it is reported through ``on_reload``, never raised into a handshake.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from hardener.model import HardenerError

__all__ = ["CertLoadError", "CertReloader", "server_context"]

_FileStamp = tuple[int, int, int, int, int, bytes]
_Stamp = tuple[_FileStamp, _FileStamp]

_MAX_STAMPED_BYTES = 1024 * 1024
"""Certificate and key files are a few KiB; a file larger than this is hashed in part only
(its size and times still count)."""


class CertLoadError(HardenerError):
    """The certificate or key file cannot be read or does not make a usable pair."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or newer) with the certificate chain from the files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise CertLoadError(f"{exc.filename}: no such file") from None
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or str(exc)
            raise CertLoadError(
                f"{cert_file}, {key_file}: not a usable certificate and key pair ({reason})"
            ) from None
        raise CertLoadError(f"{exc.filename or cert_file}: cannot read: {exc.strerror}") from None
    return context


def _not_after(cert_file: Path) -> float:
    """The Unix time the first certificate in ``cert_file`` expires (0.0 if unreadable: the
    context was loaded, so the file was fine a moment ago; the next reload reads it again)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return 0.0
    return certificate.not_valid_after_utc.timestamp()


def _stamp(path: Path) -> _FileStamp:
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        digest = hashlib.sha256(file.read(_MAX_STAMPED_BYTES)).digest()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, digest)


class CertReloader:
    """Serve the certificate in ``cert_file``/``key_file``, following changes to the files.

    ``load()`` must succeed once before ``context`` can be used. ``on_reload(ok, error)`` is
    called after each reload attempt that follows a change.
    """

    def __init__(
        self,
        cert_file: str | Path,
        key_file: str | Path,
        *,
        check_interval: float = 1.0,
        on_reload: Callable[[bool, str | None], None] | None = None,
    ) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.check_interval = check_interval
        self.on_reload = on_reload
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None
        self.not_after = 0.0
        """When the certificate in use expires (Unix time), for the expiry gauge."""
        self._front: ssl.SSLContext | None = None
        self._current: ssl.SSLContext | None = None
        self._stamp: _Stamp | None = None
        self._failed_stamp: _Stamp | None = None
        self._next_check = 0.0
        # Handshakes run on the event loop, but ``check`` may also be called from elsewhere.
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._front is not None

    @property
    def context(self) -> ssl.SSLContext:
        """The context to listen with; it stays the same across reloads."""
        if self._front is None:
            raise CertLoadError("the certificate has not been loaded yet")
        return self._front

    def load(self) -> None:
        """Load the files for the first time; raises ``CertLoadError`` with the reason."""
        stamp = self._read_stamp()
        front = server_context(self.cert_file, self.key_file)
        front.sni_callback = self._on_client_hello
        with self._lock:
            self._front = self._current = front
            self._stamp = stamp
            self.not_after = _not_after(self.cert_file)

    def check(self) -> bool:
        """Reload if the files changed since the last load; True when a new cert is in use."""
        with self._lock:
            self._next_check = time.monotonic() + self.check_interval
            try:
                stamp = self._read_stamp()
            except CertLoadError as exc:
                return self._failed(None, str(exc))
            if stamp == self._stamp or stamp == self._failed_stamp:
                return False
            try:
                context = server_context(self.cert_file, self.key_file)
            except CertLoadError as exc:
                return self._failed(stamp, str(exc))
            self._current, self._stamp, self._failed_stamp = context, stamp, None
            self.not_after = _not_after(self.cert_file)
            self.reloads += 1
            self.last_error = None
        if self.on_reload is not None:
            self.on_reload(True, None)
        return True

    def _failed(self, stamp: _Stamp | None, error: str) -> bool:
        # Called with the lock held. Report a broken set of files once, not at every handshake.
        repeated = stamp is None and error == self.last_error
        self._failed_stamp = stamp
        self.last_error = error
        if not repeated:
            self.failures += 1
            if self.on_reload is not None:
                self.on_reload(False, error)
        return False

    def _read_stamp(self) -> _Stamp:
        try:
            return (_stamp(self.cert_file), _stamp(self.key_file))
        except FileNotFoundError as exc:
            raise CertLoadError(f"{exc.filename}: no such file") from None
        except OSError as exc:
            raise CertLoadError(f"{exc.filename}: cannot read: {exc.strerror}") from None

    def _on_client_hello(
        self,
        connection: ssl.SSLObject | ssl.SSLSocket,
        server_name: str | None,
        context: ssl.SSLContext,
    ) -> None:
        # Never raise here: an exception would abort the handshake.
        try:
            if time.monotonic() >= self._next_check:
                self.check()
            current = self._current
            if current is not None and current is not context:
                connection.context = current
        except Exception:  # pragma: no cover - defensive: keep serving the current cert
            return None
        return None

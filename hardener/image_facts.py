"""What hardener knows about a container image, as plain data for the engine.

The engine never looks an image up: the faces (webhook, fixer, audit) learn the facts through
``hardener.images`` (registry, cache, offline table) and hand them to ``plan()`` as a mapping
from the container's ``image`` string, exactly as the manifest writes it, to ``ImageFacts``.
The same facts give the same ops in every face.

``parse_image_user`` reads ``config.User`` the way the container runtimes do (containerd's
``getUserFromImage``; CRI-O is the same): empty means no user at all, which the kubelet treats
as root; otherwise the part before the first ``:`` is a uid when Go's ``strconv.ParseInt(s, 10,
64)`` accepts it (ASCII digits with an optional sign, within 64 bits), else a user name.

``ImagePolicy`` is what the config says to do with an image that runs as root
(``images.root``) and with one whose facts are unknown (``images.unknown``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from hardener.records import picklable

__all__ = [
    "MAX_UID",
    "ROOT_POLICIES",
    "UNKNOWN_POLICIES",
    "FactsSource",
    "ImageFacts",
    "ImagePolicy",
    "ImageUser",
    "parse_image_user",
]

FactsSource = Literal["registry", "cache", "table", "unknown"]
"""Where facts came from: looked up now, a cached lookup, the offline table, or nothing known."""

MAX_UID: Final = 2147483647
"""The largest uid the kubelet accepts from an image (``image has an invalid user id`` above)."""


@dataclass(frozen=True)
class ImageUser:
    """``config.User`` as the runtime reads it: a numeric uid, a name, or neither (root)."""

    uid: int | None
    name: str | None

    @property
    def is_root(self) -> bool:
        """The image runs as root: no user at all, or uid 0."""
        return (self.uid is None and self.name is None) or self.uid == 0


# What Go's strconv.ParseInt(s, 10, 64) accepts: an optional sign and ASCII digits (no spaces,
# no underscores, no other Unicode digits, all of which Python's int() would take).
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_INT64: Final = range(-(2**63), 2**63)


def parse_image_user(user: str | None) -> ImageUser:
    """Split ``config.User`` as containerd does: ``""``/``None`` is no user (root); else the part
    before ``:`` is a uid when Go's ``ParseInt`` reads it as a 64-bit integer, and a user name
    otherwise (``"1_000"``, ``" 1"`` and a number past 64 bits are names to the runtime)."""
    if not user:
        return ImageUser(uid=None, name=None)
    head = user.split(":", 1)[0]
    if _GO_INT.fullmatch(head):
        uid = int(head, 10)
        if uid in _INT64:
            return ImageUser(uid=uid, name=None)
    return ImageUser(uid=None, name=head)


RootPolicy = Literal["user-namespace", "keep", "run-as-user"]
UnknownPolicy = Literal["keep", "assume-nonroot"]
ROOT_POLICIES: Final[tuple[RootPolicy, ...]] = ("user-namespace", "keep", "run-as-user")
UNKNOWN_POLICIES: Final[tuple[UnknownPolicy, ...]] = ("keep", "assume-nonroot")


@dataclass(frozen=True)
class ImagePolicy:
    """What to do when an image's user does not let ``runAsNonRoot: true`` stand alone.

    ``root`` (config ``images.root``), for an image that runs as root (no user, ``0``, or a
    name whose uid is 0): ``keep`` leaves ``runAsNonRoot`` off that container and reports it;
    ``run-as-user`` gives the container the configured ``ids`` as ``runAsUser``/``runAsGroup``;
    ``user-namespace`` (the default) leaves the image its user in a pod with
    ``hostUsers: false`` (root in the container is not root on the node there), with no
    ``runAsNonRoot`` and no finding, and is ``keep`` in any other pod.

    ``unknown`` (config ``images.unknown``), for an image whose facts are not known (no lookup,
    a failed one, a ``$IMAGE`` reference): ``keep`` (the default) leaves ``runAsNonRoot`` off
    and reports it, so hardener never emits a pod the kubelet may refuse to start;
    ``assume-nonroot`` adds it as if the image ran as a numeric non-root user.
    """

    root: RootPolicy = "user-namespace"
    unknown: UnknownPolicy = "keep"


@dataclass(frozen=True)
class ImageFacts:
    """The facts of one image that hardening decisions depend on.

    ``user`` is the raw ``config.User`` (``""`` when the image sets none); ``None`` only when
    nothing is known (``source == "unknown"``). ``uid``/``gid`` are the numeric ids the image
    runs as when known: parsed from ``user``, or resolved from the image's ``/etc/passwd`` and
    ``/etc/group`` for a name. ``volumes`` are the config's ``Volumes`` paths;
    ``writable_paths`` are further paths the image is known to write (offline table).
    ``detail`` says where the facts came from or why they are unknown, for messages.
    """

    reference: str
    """The normalised reference, e.g. ``docker.io/library/nginx:latest``."""
    source: FactsSource
    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    volumes: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ()
    digest: str | None = None
    detail: str = ""

    @property
    def known(self) -> bool:
        return self.source != "unknown" and self.user is not None

    @classmethod
    def unknown(cls, reference: str, detail: str) -> ImageFacts:
        return cls(reference=reference, source="unknown", detail=detail)


picklable(ImageUser, ImagePolicy, ImageFacts)

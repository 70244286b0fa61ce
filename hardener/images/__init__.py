"""Image facts from registries: the client, the cache, the offline table.

The faces (webhook, fixer, audit, CLI) call ``ImageResolver`` (one per process or run),
``resolve_images`` / ``resolve_images_sync``, or ``lookup_run`` (a command-line run), and hand
the resulting ``{image string: ImageFacts}`` to the engine; the engine never imports this package.
See docs/images.md.

Errors: ``LookupFailed`` (a ``HardenerError``) stays inside the package; every public call
answers with facts, ``ImageFacts.unknown`` with a detail when nothing is known.
"""

from hardener.images._cache import ImageCache
from hardener.images._reference import Reference, ReferenceError, parse_reference
from hardener.images._resolve import (
    LATENCY_BUCKETS,
    ImageResolver,
    LookupAnswer,
    LookupMetrics,
    cache_directory,
    resolve_images,
    resolve_images_sync,
)
from hardener.images._run import OFFLINE_ENV, RunLookup, images_of, lookup_run, offline_reason
from hardener.images._table import BUILT_IN_TABLE, match_table

__all__ = [
    "BUILT_IN_TABLE",
    "LATENCY_BUCKETS",
    "OFFLINE_ENV",
    "ImageCache",
    "ImageResolver",
    "LookupAnswer",
    "LookupMetrics",
    "Reference",
    "ReferenceError",
    "RunLookup",
    "cache_directory",
    "images_of",
    "lookup_run",
    "match_table",
    "offline_reason",
    "parse_reference",
    "resolve_images",
    "resolve_images_sync",
]

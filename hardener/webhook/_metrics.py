"""The webhook's Prometheus metrics, in a registry of their own.

Each app gets its own ``CollectorRegistry`` (not the process-wide default), so two apps in one
process, as in the tests, never collide over metric names.

Counting costs little per review: the series are made up front (no label lookups per
request), the in-flight gauge reads the server's own count when scraped, and the patches by
rule (one review applies half a dozen rules, and each ``inc`` takes a lock) are tallied per
set of rules and added to the counter when it is collected.

Image lookups: ``hardener_image_lookups_total{outcome}`` counts, per image of each review,
where its facts came from (``registry``, ``cache``, ``table``, ``unknown``) or ``fallback``
when a lookup failed or ran out of time and the fallback answered. Cache hits, failures by
kind and the lookup latency are the resolver's own plain counters (``LookupMetrics``), read
when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hardener.images import LATENCY_BUCKETS as LOOKUP_BUCKETS
from hardener.images import LookupMetrics
from hardener.rules import RULES
from hardener.rules.user_namespace import REASONS as USER_NAMESPACE_REASONS
from hardener.userns import Support
from hardener.webhook._review import OUTCOMES

__all__ = [
    "BAD_REQUEST",
    "BUSY",
    "CACHE_HIT_KINDS",
    "IMAGE_OUTCOMES",
    "LATENCY_BUCKETS",
    "LOOKUP_FAILURES",
    "Metrics",
]

BAD_REQUEST = "bad_request"
"""The ``outcome`` of a request answered with HTTP 400."""

BUSY = "busy"
"""The ``outcome`` of a request answered with HTTP 429: no room in the body budget in time."""

IMAGE_OUTCOMES = ("registry", "cache", "table", "unknown", "fallback")
"""The ``outcome`` of an image lookup: where the facts came from, or ``fallback`` when the
lookup failed or ran out of time and the cache, the table or ``images.unknown`` answered."""

CACHE_HIT_KINDS = ("tag", "facts", "answer")
LOOKUP_FAILURES = ("host-down", "registry", "timeout", "deadline", "reference", "error")
"""Failure kinds of ``LookupMetrics.failures``, exported from the start (a series that
appears late loses its first increments to ``rate``)."""

# Admission answers are expected in milliseconds; the tail buckets reach the deadline range.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _RuleCounter(Counter):
    """A labelled ``Counter`` that can also be counted a set of rules at a time, cheaply.

    ``count(rules)`` only notes the set; ``collect()`` (every scrape) first adds what was
    noted to the children. Meant for one thread (the event loop) counting and scraping.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set before the base class registers the counter (which may collect it).
        self._noted: dict[tuple[str, ...], int] = {}
        super().__init__(*args, **kwargs)

    def count(self, rules: tuple[str, ...]) -> None:
        noted = self._noted
        noted[rules] = noted.get(rules, 0) + 1

    def collect(self) -> Iterable[Metric]:
        if self._noted:
            noted, self._noted = self._noted, {}
            for rules, times in noted.items():
                for rule in rules:
                    self.labels(rule).inc(times)
        return super().collect()


class _LookupCollector(Collector):
    """The resolver's ``LookupMetrics`` as Prometheus series, read at every scrape."""

    def __init__(self, lookups: LookupMetrics) -> None:
        self.lookups = lookups

    def collect(self) -> Iterable[Metric]:
        lookups = self.lookups
        hits = CounterMetricFamily(
            "hardener_image_cache_hits",
            "Image lookups answered from the cache, by kind (tag: a tag's digest; facts: a "
            "digest's user and volumes; answer: an image answered moments ago, from memory).",
            labels=["kind"],
        )
        for kind in dict.fromkeys((*CACHE_HIT_KINDS, *lookups.cache_hits)):
            hits.add_metric([kind], lookups.cache_hits.get(kind, 0))
        yield hits
        failures = CounterMetricFamily(
            "hardener_image_lookup_failures",
            "Image lookups that failed, by kind (host-down, registry, timeout, deadline: the "
            "webhook stopped waiting, reference: not an image reference, error: a bug).",
            labels=["kind"],
        )
        for kind in dict.fromkeys((*LOOKUP_FAILURES, *lookups.failures)):
            failures.add_metric([kind], lookups.failures.get(kind, 0))
        yield failures
        latency = HistogramMetricFamily(
            "hardener_image_lookup_duration_seconds",
            "Time to answer one image lookup (from memory, the disk cache or the registry).",
        )
        buckets = [
            (repr(float(bound)), float(count))
            for bound, count in zip(LOOKUP_BUCKETS, lookups.latency_buckets, strict=True)
        ]
        buckets.append(("+Inf", float(lookups.latency_count)))
        latency.add_metric([], buckets, lookups.latency_sum)
        yield latency


class Metrics:
    """Requests by outcome, patches by rule, latency, requests in flight, certificate reloads
    and expiry, the ``user-namespace`` rule's decisions by reason and the state of user
    namespace support."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "hardener_webhook_requests",
            "Admission requests answered, by outcome (bad_request: answered with HTTP 400; "
            "busy: with HTTP 429).",
            ["outcome"],
            registry=self.registry,
        )
        self.patches = _RuleCounter(
            "hardener_webhook_patches",
            "Patched admission responses, by rule applied (a patch counts once per rule).",
            ["rule"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hardener_webhook_request_duration_seconds",
            "Time from the start of the handler to the response being ready.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "hardener_webhook_requests_in_flight",
            "Admission requests being handled now.",
            registry=self.registry,
        )
        self.cert_reloads = Counter(
            "hardener_webhook_certificate_reloads",
            "Reloads of the serving certificate after its files changed, by result.",
            ["result"],
            registry=self.registry,
        )
        self.cert_expiry = Gauge(
            "hardener_webhook_certificate_expiry_timestamp_seconds",
            "Unix time the serving certificate in use expires (0: no TLS, or not loaded).",
            registry=self.registry,
        )
        # Children made up front: every series exists from the start (a rate over a series
        # that appears late misses its first increments) and the hot path skips the lookup.
        self.by_outcome = {
            name: self.requests.labels(name) for name in (*OUTCOMES, BAD_REQUEST, BUSY)
        }
        self.by_rule = {rule.id: self.patches.labels(rule.id) for rule in RULES}
        for result in ("success", "failure"):
            self.cert_reloads.labels(result)
        self.user_namespace = Counter(
            "hardener_webhook_user_namespace_decisions",
            "Pods reviewed, by what the user-namespace rule decided for them (added: "
            "hostUsers: false set; the other reasons say why not).",
            ["reason"],
            registry=self.registry,
        )
        self.by_user_namespace = {
            reason: self.user_namespace.labels(reason) for reason in USER_NAMESPACE_REASONS
        }
        self.image_lookups = Counter(
            "hardener_image_lookups",
            "Images of reviewed objects looked up, by outcome: where the facts came from "
            "(registry, cache, table, unknown), or fallback when the lookup failed or ran out "
            "of time and the cache, the table or images.unknown answered.",
            ["outcome"],
            registry=self.registry,
        )
        self.by_image_outcome = {o: self.image_lookups.labels(o) for o in IMAGE_OUTCOMES}
        self._lookups: _LookupCollector | None = None
        self.user_namespaces_enabled = Gauge(
            "hardener_webhook_user_namespaces_enabled",
            "1 while a pod on the default runtime handler gets hostUsers: false "
            "(user-namespaces: always, or auto with every Linux node reporting support), else 0.",
            registry=self.registry,
        )
        self.user_namespaces_synced = Gauge(
            "hardener_webhook_user_namespaces_watch_synced",
            "1 while the node watch of user-namespaces: auto has a current view of the "
            "cluster's Nodes, else 0 (not listed yet, the API server cannot be reached, or "
            "auto is not in use).",
            registry=self.registry,
        )

    def track_image_lookups(self, lookups: LookupMetrics) -> None:
        """Export the resolver's counters (cache hits, failures, latency) when scraped."""
        if self._lookups is not None:
            self.registry.unregister(self._lookups)
        self._lookups = _LookupCollector(lookups)
        self.registry.register(self._lookups)

    def count_image(self, outcome: str) -> None:
        """One image of a review, by ``IMAGE_OUTCOMES``."""
        self.by_image_outcome[outcome].inc()

    def count_user_namespace(self, reasons: tuple[str, ...]) -> None:
        """The ``user-namespace`` rule's decisions in one review."""
        for reason in reasons:
            counter = self.by_user_namespace.get(reason)
            if counter is None:  # a reason added without a series: count it all the same
                counter = self.by_user_namespace[reason] = self.user_namespace.labels(reason)
            counter.inc()

    def track_user_namespaces(self, support: Callable[[], Support]) -> None:
        """Report ``support()``'s state whenever the metrics are collected."""
        self.user_namespaces_enabled.set_function(lambda: float(support().default_on))
        self.user_namespaces_synced.set_function(lambda: float(support().state == "cluster"))

    def count_patch(self, rules: tuple[str, ...]) -> None:
        """One patched review that applied ``rules``."""
        self.patches.count(rules)

    def track_in_flight(self, count: Callable[[], float]) -> None:
        """Report ``count()`` as the requests in flight whenever the metrics are collected."""
        self.in_flight.set_function(count)

    def track_cert_expiry(self, not_after: Callable[[], float]) -> None:
        """Report ``not_after()`` (Unix time) as the certificate's expiry when scraped."""
        self.cert_expiry.set_function(not_after)

"""Prometheus metrics: counts and ages only, never an id."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("oberih_updates_handled_total", "Inbound updates handled", ["channel"], registry=r)
        self.parked = Counter("oberih_updates_parked_total", "Inbound updates parked after failures", ["channel"], registry=r)
        self.steps = Counter("oberih_dialog_steps_total", "Dialog events handled", registry=r)
        self.deliveries = Counter("oberih_deliveries_total", "Outbox items delivered", ["kind"], registry=r)
        self.retries = Counter("oberih_delivery_retries_total", "Delivery retries", ["kind", "reason"], registry=r)
        self.throttled = Counter("oberih_telegram_429_total", "Telegram 429 answers", registry=r)
        self.failures = Counter("oberih_delivery_failures_total", "Outbox items given up", ["kind"], registry=r)
        self.cases = Gauge("oberih_cases", "Cases by status", ["status"], registry=r)
        self.outbox_depth = Gauge("oberih_outbox_depth", "Outbox items waiting", registry=r)
        self.outbox_age = Gauge("oberih_outbox_oldest_seconds", "Age of the oldest waiting outbox item", registry=r)
        self.inbox_depth = Gauge("oberih_inbox_depth", "Inbound updates waiting", registry=r)

    # the hooks the inbox processor and the delivery worker call
    def update_handled(self, channel: str) -> None:
        self.updates.labels(channel).inc()
        self.steps.inc()

    def update_parked(self, channel: str) -> None:
        self.parked.labels(channel).inc()

    def delivered(self, kind: str) -> None:
        self.deliveries.labels(kind).inc()

    def retried(self, kind: str, reason: str) -> None:
        self.retries.labels(kind, reason).inc()
        if reason == "429":
            self.throttled.inc()

    def failed(self, kind: str) -> None:
        self.failures.labels(kind).inc()

    async def refresh(self, db) -> None:
        """Gauges read from the database just before a scrape."""
        async with db.transaction() as tx:
            for status, count in (await tx.cases.count_by_status()).items():
                self.cases.labels(status).set(count)
            self.outbox_depth.set(await tx.outbox.depth())
            self.outbox_age.set(await tx.outbox.oldest_pending_age(tx.now) or 0)
            self.inbox_depth.set(await tx.inbox.depth())

    def render(self) -> bytes:
        return generate_latest(self.registry)

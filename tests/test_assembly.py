"""assemble(settings): which parts exist for which settings, and how they are wired."""

from __future__ import annotations

import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble, resource_for
from otel_bridge.config import (
    FeedSettings,
    MetricsSettings,
    OtlpSettings,
    PricingSettings,
    Settings,
    StoreSettings,
)
from otel_bridge.model import AgentEvent, EventKind, TokenUsage
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks.export_process import ProcessExporter
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.sinks.store import TraceStore

ENDPOINT = "http://127.0.0.1:9"  # never contacted: nothing here starts


def completion(call_id: str = "c") -> AgentEvent:
    return AgentEvent(
        kind=EventKind.LLM_COMPLETED, run_id="r", timestamp_ns=1_800_000_000_000_000_000, dialect="test",
        original_type="x", call_id=call_id, model="gpt-4o", usage=TokenUsage(input=1000, output=100),
    )  # fmt: skip


def test_defaults_give_the_store_and_the_metrics_and_no_exporter() -> None:
    pipeline = assemble(Settings())
    assert isinstance(pipeline.store, TraceStore)
    assert pipeline.exporter is None
    assert pipeline.metrics is not None
    assert pipeline.metrics_exporter is None  # no metrics endpoint
    assert pipeline.sink.names == ("store", "metrics")
    assert pipeline.bridge.mapper is pipeline.mapper
    assert pipeline.bridge.stats is pipeline.stats


def test_store_off_leaves_it_out_of_the_sinks_and_the_observers() -> None:
    pipeline = assemble(Settings(store=StoreSettings(enabled=False), metrics=MetricsSettings(enabled=False)))
    assert pipeline.store is None
    assert pipeline.sink.names == ()


def test_an_endpoint_adds_the_exporter_in_a_worker_process_by_default() -> None:
    pipeline = assemble(Settings(otlp=OtlpSettings(endpoint=ENDPOINT)))
    assert isinstance(pipeline.exporter, ProcessExporter)
    assert pipeline.sink.names == ("store", "otlp", "metrics")


def test_worker_process_off_exports_in_this_process() -> None:
    pipeline = assemble(Settings(otlp=OtlpSettings(endpoint=ENDPOINT, worker_process=False)))
    assert isinstance(pipeline.exporter, OtlpExporter)
    assert pipeline.exporter.queue_depth == 0
    assert pipeline.exporter.last_error is None


def test_a_metrics_endpoint_adds_the_metrics_push_only_when_metrics_are_on() -> None:
    assert assemble(Settings(metrics=MetricsSettings(endpoint=ENDPOINT))).metrics_exporter is not None
    off = assemble(Settings(metrics=MetricsSettings(enabled=False, endpoint=ENDPOINT)))
    assert (off.metrics, off.metrics_exporter) == (None, None)
    assert "metrics" not in off.sink.names


def test_extra_sinks_come_last_each_with_its_own_name() -> None:
    first, second = ListSink(), ListSink()
    pipeline = assemble(Settings(metrics=MetricsSettings(enabled=False)), extra_sinks=[first, second])
    assert pipeline.sink.names == ("store", "ListSink", "ListSink#2")
    pipeline.bridge.submit([completion()])
    assert len(first.spans) == len(second.spans) == 1


def test_the_store_and_the_feed_observe_what_the_bridge_maps() -> None:
    pipeline = assemble(Settings())
    pipeline.bridge.submit([completion()])
    assert pipeline.store is not None
    assert [s.run_id for s in pipeline.store.recent()] == ["r"]
    assert pipeline.feed.published == 1


def test_a_disabled_feed_observes_nothing() -> None:
    pipeline = assemble(Settings(feed=FeedSettings(enabled=False)))
    pipeline.bridge.submit([completion()])
    assert pipeline.feed.published == 0


def test_prices_come_from_the_settings_unless_a_pricer_is_given() -> None:
    ((_, priced),) = assemble(Settings()).bridge.submit([completion()])
    ((_, off),) = assemble(Settings(pricing=PricingSettings(enabled=False))).bridge.submit([completion()])
    ((_, none),) = assemble(Settings(), pricer=None).bridge.submit([completion()])
    ((_, fixed),) = assemble(Settings(), pricer=lambda *_: 0.5).bridge.submit([completion()])
    assert priced.cost_usd is not None
    assert priced.cost_usd > 0
    assert (off.cost_usd, none.cost_usd, fixed.cost_usd) == (None, None, 0.5)


def test_the_metrics_snapshot_reads_the_live_figures() -> None:
    pipeline = assemble(Settings())
    pipeline.bridge.submit([completion()])
    families = {f.name: f for f in pipeline.metrics_snapshot().families}
    assert sc.METRIC_TOKEN_USAGE in families
    (received,) = families[sc.METRIC_EVENTS_RECEIVED].series
    assert received.value == 1


def test_the_resource_names_the_service_and_the_configured_attributes_win() -> None:
    settings = Settings(service_name="sidecar", resource_attributes={"team": "agents"})
    resource = resource_for(settings)
    assert resource[sc.SERVICE_NAME] == "sidecar"
    assert resource["team"] == "agents"
    assert assemble(settings).resource == resource


@pytest.mark.parametrize("worker", [True, False])
def test_health_says_which_encoder_writes_the_requests(worker: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from otel_bridge.app import create_app

    monkeypatch.setenv("OTEL_BRIDGE_OTLP_ENCODER", "pure")  # the one encoder every machine has
    settings = Settings(otlp=OtlpSettings(endpoint=ENDPOINT, worker_process=worker))
    with TestClient(create_app(settings)) as client:
        encoder = client.get("/v1/health").json()["export_encoder"]
    assert encoder.startswith("OTLP protobuf, pure Python (OTEL_BRIDGE_OTLP_ENCODER=pure)"), encoder
    assert ("export worker" in encoder) is worker

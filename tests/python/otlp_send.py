"""Export known metric values with the OpenTelemetry Python SDK to an OTLP endpoint.

Used by tests/tests/otlp.rs. Records fixed values through the real SDK and its real OTLP
exporter (HTTP protobuf or gRPC), flushes, and prints one JSON object on stdout saying what
was recorded, so the test can compare it with what pipewatch stored:

    {"service": ..., "exports": N,
     "recorded": [{"name", "kind", "unit", "temporality", "attributes", "value" | "values"}]}

`value` is the running total the SDK reports for sums and the last value for gauges;
histograms list every recorded value in `values`. A delta counter is exported twice (two
collections), so the receiver has to add the deltas up.

    python otlp_send.py --exporter http --endpoint http://127.0.0.1:PORT
    python otlp_send.py --exporter grpc --endpoint 127.0.0.1:PORT
"""

import argparse
import json
import sys

from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource


def exporter(kind, endpoint, delta):
    temporality = (
        {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
        if delta
        else None
    )
    if kind == "http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=endpoint.rstrip("/") + "/v1/metrics",
            preferred_temporality=temporality,
            timeout=10,
        )
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(
        endpoint=endpoint, insecure=True, preferred_temporality=temporality, timeout=10
    )


def provider(kind, endpoint, service, delta):
    # A long interval: exports happen only when the script flushes.
    reader = PeriodicExportingMetricReader(
        exporter(kind, endpoint, delta), export_interval_millis=3_600_000
    )
    resource = Resource.create(
        {"service.name": service, "service.instance.id": f"{service}-1", "team": "data"}
    )
    return MeterProvider(metric_readers=[reader], resource=resource)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exporter", choices=["http", "grpc"], required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--service", default="live-etl")
    args = ap.parse_args()

    recorded = []
    exports = 0

    # Cumulative pipeline.
    mp = provider(args.exporter, args.endpoint, args.service, delta=False)
    meter = mp.get_meter("pipewatch.live", "1.0.0")
    rows = meter.create_counter("live.rows.processed", unit="{row}", description="Rows.")
    rows.add(300, {"step": "extract"})
    rows.add(50, {"step": "extract"})
    rows.add(7, {"step": "load"})
    recorded += [
        {"name": "live.rows.processed", "kind": "counter", "unit": "{row}",
         "temporality": "cumulative", "attributes": {"step": "extract"}, "value": 350},
        {"name": "live.rows.processed", "kind": "counter", "unit": "{row}",
         "temporality": "cumulative", "attributes": {"step": "load"}, "value": 7},
    ]
    depth = meter.create_up_down_counter("live.queue.depth", unit="{item}")
    depth.add(10, {"queue": "ingest"})
    depth.add(-4, {"queue": "ingest"})
    recorded.append({"name": "live.queue.depth", "kind": "updowncounter", "unit": "{item}",
                     "temporality": "cumulative", "attributes": {"queue": "ingest"}, "value": 6})
    lag = meter.create_gauge("live.batch.lag", unit="s")
    lag.set(4.25, {"source": "kafka"})
    recorded.append({"name": "live.batch.lag", "kind": "gauge", "unit": "s",
                     "temporality": None, "attributes": {"source": "kafka"}, "value": 4.25})
    duration = meter.create_histogram(
        "live.step.duration", unit="ms", explicit_bucket_boundaries_advisory=[10, 100, 1000]
    )
    values = [3, 12, 70, 250, 4000]
    for v in values:
        duration.record(v, {"step": "extract"})
    recorded.append({"name": "live.step.duration", "kind": "histogram", "unit": "ms",
                     "temporality": "cumulative", "attributes": {"step": "extract"},
                     "bounds": [10, 100, 1000], "values": values})
    if not mp.force_flush(10_000):
        sys.exit("cumulative export failed")
    exports += 1
    mp.shutdown()
    exports += 1  # shutdown exports the final collection again

    # Delta pipeline: two collections, 5 then 7 more.
    dp = provider(args.exporter, args.endpoint, args.service, delta=True)
    dmeter = dp.get_meter("pipewatch.live.delta", "1.0.0")
    rejected = dmeter.create_counter("live.rows.rejected", unit="{row}")
    rejected.add(5, {"reason": "schema"})
    if not dp.force_flush(10_000):
        sys.exit("delta export 1 failed")
    rejected.add(7, {"reason": "schema"})
    if not dp.force_flush(10_000):
        sys.exit("delta export 2 failed")
    exports += 2
    dp.shutdown()
    recorded.append({"name": "live.rows.rejected", "kind": "counter", "unit": "{row}",
                     "temporality": "delta", "attributes": {"reason": "schema"}, "value": 12})

    print(json.dumps({"service": args.service, "exports": exports, "recorded": recorded}))


if __name__ == "__main__":
    main()

"""Sends a small pipeline's OpenLineage events with the real openlineage-python client.

Used two ways:

- by tests/tests/lineage.rs (live test): `--url http://127.0.0.1:PORT` sends every event to
  pipewatch with the client's HttpTransport (`--gzip` turns on its gzip compression);
- to make the fixtures in collectors/tests/fixtures/openlineage/: `--capture DIR` points the
  same HttpTransport at a throw-away HTTP server on 127.0.0.1 that writes each request body it
  receives, byte for byte, to DIR/NN-<what>.json.

Either way `--summary FILE` writes what was sent (run ids, event times, row counts, schemas)
as JSON, computed here from the scenario, so tests compare pipewatch's results with what the
client sent and not with pipewatch's own output.

The pipeline (namespace `pipewatch-test`):
  raw.orders --> ingest_orders --> warehouse.orders --> train_model (FAIL) --> models.churn
  ingest_orders runs twice; the second run adds a column `discount` to warehouse.orders and
  changes `amount` from DECIMAL(10,2) to DOUBLE (a schema change). train_model reads with
  data-quality metrics and assertions and fails with an error message; export_orders is
  aborted; a JobEvent and a DatasetEvent describe a report job and its dataset.
"""

import argparse
import datetime as dt
import http.server
import json
import os
import sys
import threading
import uuid

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    error_message_run,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.transport.http import HttpCompression, HttpConfig, HttpTransport

NS = "pipewatch-test"
DB = "postgres://db.example:5432"
PRODUCER = "https://github.com/pipewatch/tests/python/lineage_emit.py"

SCHEMA_V1 = [("order_id", "BIGINT"), ("customer_id", "BIGINT"), ("amount", "DECIMAL(10,2)")]
SCHEMA_V2 = [("order_id", "BIGINT"), ("customer_id", "BIGINT"), ("amount", "DOUBLE"), ("discount", "DOUBLE")]


def iso(t):
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).isoformat()


def schema(fields):
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


def scenario(base, run_ids):
    """The events in sending order, and a summary of what they say."""
    ingest1, ingest2, train, export, parent = run_ids
    raw = lambda: InputDataset(
        namespace=DB,
        name="raw.orders",
        inputFacets={
            "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=1200, size=65536
            )
        },
    )
    events = []
    summary = {"namespace": NS, "events": [], "runs": {}, "schema_changes": []}

    def run_event(state, t, run_id, job, inputs=(), outputs=(), run_facets=None):
        events.append(
            RunEvent(
                eventType=state,
                eventTime=iso(t),
                run=Run(runId=run_id, facets=run_facets or {}),
                job=Job(namespace=NS, name=job),
                inputs=list(inputs),
                outputs=list(outputs),
                producer=PRODUCER,
            )
        )
        summary["events"].append(
            {"kind": "run", "eventType": state.value, "time": t, "runId": run_id, "job": job}
        )

    def orders_out(fields, rows, size):
        return OutputDataset(
            namespace=NS,
            name="warehouse.orders",
            facets={"schema": schema(fields)},
            outputFacets={
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=rows, size=size, fileCount=2
                )
            },
        )

    # Run 1 of ingest_orders: START, RUNNING, COMPLETE after 42.5 s.
    run_event(RunState.START, base, ingest1, "ingest_orders", [raw()], [orders_out(SCHEMA_V1, None, None)])
    run_event(RunState.RUNNING, base + 10, ingest1, "ingest_orders")
    run_event(RunState.COMPLETE, base + 42.5, ingest1, "ingest_orders", [raw()], [orders_out(SCHEMA_V1, 1000, 52000)])
    summary["runs"][ingest1] = {"job": "ingest_orders", "state": "COMPLETE", "duration_seconds": 42.5}

    # Run 2 of ingest_orders changes the schema of warehouse.orders.
    run_event(RunState.START, base + 100, ingest2, "ingest_orders", [raw()], [])
    run_event(RunState.COMPLETE, base + 160, ingest2, "ingest_orders", [raw()], [orders_out(SCHEMA_V2, 1100, 60000)])
    summary["runs"][ingest2] = {"job": "ingest_orders", "state": "COMPLETE", "duration_seconds": 60.0}
    summary["schema_changes"].append(
        {
            "dataset": "warehouse.orders",
            "runId": ingest2,
            "time": base + 160,
            "added": ["discount"],
            "removed": [],
            "type_changed": [{"name": "amount", "from": "DECIMAL(10,2)", "to": "DOUBLE"}],
        }
    )

    # train_model reads warehouse.orders with data-quality facets, and fails.
    dq_in = InputDataset(
        namespace=NS,
        name="warehouse.orders",
        facets={
            "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(assertion="not_null", success=True, column="order_id"),
                    data_quality_assertions_dataset.Assertion(assertion="row_count", success=False),
                ]
            )
        },
        inputFacets={
            "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                rowCount=1100,
                bytes=60000,
                columnMetrics={
                    "amount": data_quality_metrics_input_dataset.ColumnMetrics(
                        nullCount=7, distinctCount=950, sum=51234.5, count=1093, min=0.5, max=999.0,
                        quantiles={"0.5": 42.0, "0.99": 880.0},
                    ),
                    "customer_id": data_quality_metrics_input_dataset.ColumnMetrics(nullCount=0, distinctCount=310),
                },
            )
        },
    )
    parent_facet = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent), job=parent_run.Job(namespace=NS, name="nightly_dag")
    )
    run_event(RunState.START, base + 200, train, "train_model", [dq_in], [], {"parent": parent_facet})
    run_event(
        RunState.FAIL,
        base + 215.25,
        train,
        "train_model",
        [dq_in],
        [OutputDataset(namespace=NS, name="models.churn")],
        {
            "parent": parent_facet,
            "errorMessage": error_message_run.ErrorMessageRunFacet(
                message="ValueError: training set has 7 null amounts", programmingLanguage="PYTHON"
            ),
        },
    )
    summary["runs"][train] = {
        "job": "train_model",
        "state": "FAIL",
        "duration_seconds": 15.25,
        "error": "ValueError: training set has 7 null amounts",
        "parent": {"runId": parent, "job": "nightly_dag"},
    }
    summary["dq"] = {
        "dataset": "warehouse.orders",
        "rowCount": 1100,
        "bytes": 60000,
        "columns": {
            "amount": {"nullCount": 7, "distinctCount": 950, "sum": 51234.5, "count": 1093, "min": 0.5, "max": 999.0,
                       "quantiles": {"0.5": 42.0, "0.99": 880.0}},
            "customer_id": {"nullCount": 0, "distinctCount": 310},
        },
        "assertions": [
            {"assertion": "not_null", "column": "order_id", "success": True},
            {"assertion": "row_count", "column": None, "success": False},
        ],
    }

    # export_orders is aborted.
    run_event(RunState.START, base + 300, export, "export_orders", [InputDataset(namespace=NS, name="warehouse.orders")], [])
    run_event(RunState.ABORT, base + 303, export, "export_orders")
    summary["runs"][export] = {"job": "export_orders", "state": "ABORT", "duration_seconds": 3.0}

    # Static metadata: a job and its datasets, and a dataset on its own.
    events.append(
        JobEvent(
            eventTime=iso(base + 400),
            job=Job(namespace=NS, name="daily_report"),
            inputs=[InputDataset(namespace=NS, name="warehouse.orders")],
            outputs=[OutputDataset(namespace=NS, name="reports.daily", facets={"schema": schema([("day", "DATE"), ("revenue", "DOUBLE")])})],
            producer=PRODUCER,
        )
    )
    summary["events"].append({"kind": "job", "time": base + 400, "job": "daily_report"})
    events.append(
        DatasetEvent(
            eventTime=iso(base + 500),
            dataset=StaticDataset(namespace=NS, name="reports.daily", facets={"schema": schema([("day", "DATE"), ("revenue", "DOUBLE")])}),
            producer=PRODUCER,
        )
    )
    summary["events"].append({"kind": "dataset", "time": base + 500, "dataset": "reports.daily"})
    summary["edges"] = sorted(
        [
            ["dataset", DB + "/raw.orders", "job", NS + "/ingest_orders"],
            ["job", NS + "/ingest_orders", "dataset", NS + "/warehouse.orders"],
            ["dataset", NS + "/warehouse.orders", "job", NS + "/train_model"],
            ["job", NS + "/train_model", "dataset", NS + "/models.churn"],
            ["dataset", NS + "/warehouse.orders", "job", NS + "/export_orders"],
            ["dataset", NS + "/warehouse.orders", "job", NS + "/daily_report"],
            ["job", NS + "/daily_report", "dataset", NS + "/reports.daily"],
        ]
    )
    return events, summary


class Capture(http.server.BaseHTTPRequestHandler):
    """Writes each POST body as received; answers 200 like a lineage backend."""

    out_dir = None
    names = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = len(os.listdir(self.out_dir)) + 1
        with open(os.path.join(self.out_dir, f"{n:02d}-{self.names[n - 1]}.json"), "wb") as f:
            f.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="pipewatch base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--capture", help="directory to write the request bodies to")
    p.add_argument("--base-time", type=float, required=True, help="Unix seconds of the first event")
    p.add_argument("--summary", help="write what was sent here (JSON)")
    p.add_argument("--gzip", action="store_true", help="HttpTransport compression=gzip")
    p.add_argument("--fixed-ids", action="store_true", help="deterministic run ids (fixtures)")
    a = p.parse_args()

    if a.fixed_ids:
        run_ids = [str(uuid.UUID(int=0x0190_0000_0000_7000_8000_0000_0000_0000 + i)) for i in range(1, 6)]
    else:
        run_ids = [str(uuid.uuid4()) for _ in range(5)]
    events, summary = scenario(a.base_time, run_ids)

    server = None
    url = a.url
    if a.capture:
        os.makedirs(a.capture, exist_ok=True)
        Capture.out_dir = a.capture
        Capture.names = [
            (e.job.name + "-" + e.eventType.value if isinstance(e, RunEvent)
             else "job-" + e.job.name if isinstance(e, JobEvent)
             else "dataset-" + e.dataset.name).replace(".", "_").lower()
            for e in events
        ]
        server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
    if not url:
        p.error("give --url or --capture")

    config = HttpConfig(url=url, timeout=10.0, compression=HttpCompression.GZIP if a.gzip else None)
    client = OpenLineageClient(transport=HttpTransport(config))
    for e in events:
        client.emit(e)
    if server:
        server.shutdown()
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"sent {len(events)} events to {url}", file=sys.stderr)


if __name__ == "__main__":
    main()

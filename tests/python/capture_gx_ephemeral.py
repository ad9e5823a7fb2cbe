"""Capture real Great Expectations 1.x output for tests/fixtures/dq/gx_ephemeral/.

A suite built in code in an *ephemeral* context (gx.get_context(mode="ephemeral")), the way a
notebook or an Airflow task usually runs GX 1.x, validated twice in two separate contexts —
as two runs of the same job are two processes. GX gives every expectation a new id in every
run, which is what the importer must cope with. Also writes CheckpointResult.describe() of the
second run, the JSON GX documents for checkpoint results.

    python capture_gx_ephemeral.py OUT_DIR

Writes OUT_DIR/validation_result_run1.json, validation_result_run2.json (each
ExpectationSuiteValidationResult.to_json_dict()) and checkpoint_describe_run2.json
(CheckpointResult.describe()). Needs great_expectations==1.24.* and pandas.
"""

import datetime as dt
import json
import os
import sys

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage-statistics traffic

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402

ROWS = {
    "order_id": [1, 2, 3, 4, 5, 5],
    "status": ["paid", "paid", "shipped", "refunded", "paid", "paid"],
    "amount": [10.0, 25.5, -3.0, 40.0, 12.0, 12.0],
}


def run(run_name, run_time):
    context = gx.get_context(mode="ephemeral")
    batch_def = (
        context.data_sources.add_pandas("shop")
        .add_dataframe_asset(name="orders")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="orders_in_code"))
    for e in [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=100),
        gxe.ExpectColumnValuesToBeUnique(column="order_id"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["paid", "shipped"]),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=1000),
        gxe.ExpectColumnMeanToBeBetween(column="amount", min_value=50, max_value=100, severity="warning"),
    ]:
        suite.add_expectation(e)
    vd = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders_check", data=batch_def, suite=suite)
    )
    cp = context.checkpoints.add(gx.Checkpoint(name="orders_cp", validation_definitions=[vd], actions=[]))
    res = cp.run(
        batch_parameters={"dataframe": pd.DataFrame(ROWS)},
        run_id=RunIdentifier(run_name=run_name, run_time=dt.datetime.fromisoformat(run_time)),
    )
    (vr,) = res.run_results.values()
    return vr.to_json_dict(), res.describe()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    vr1, _ = run("nightly", "2024-05-02T01:00:00+00:00")
    vr2, describe2 = run("nightly", "2024-05-03T01:00:00+00:00")
    for name, doc in [("validation_result_run1.json", vr1), ("validation_result_run2.json", vr2)]:
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    with open(os.path.join(out, "checkpoint_describe_run2.json"), "w") as f:
        f.write(describe2)
        f.write("\n")
    ids1 = sorted(r["expectation_config"]["id"] for r in vr1["results"])
    ids2 = sorted(r["expectation_config"]["id"] for r in vr2["results"])
    print(json.dumps({"gx": gx.__version__, "ids_shared_between_runs": len(set(ids1) & set(ids2))}))


if __name__ == "__main__":
    main()

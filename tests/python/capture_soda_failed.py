"""Capture real Soda Core scans that failed as a whole, for tests/fixtures/dq/soda_failed/.

Two scans of the same checks on table `orders` through Soda's own Python API (what
`soda scan ... -srf` writes is scan.get_scan_results()):

- connection_error.json: the data source points at a closed loopback port, so Soda cannot
  connect; nothing is evaluated.
- missing_column.json (only when PGHOST/PGPORT/PGUSER/PGDATABASE are set): a check on a column
  the table does not have, against a real PostgreSQL with a small `orders` table (created here).

    python capture_soda_failed.py OUT_DIR

Needs soda-core-postgres==3.5.*. Anonymous usage statistics are switched off through a scratch
HOME (Soda reads ~/.soda/config.yml).
"""

import json
import os
import socket
import sys
import tempfile

home = tempfile.mkdtemp()
os.makedirs(os.path.join(home, ".soda"))
with open(os.path.join(home, ".soda", "config.yml"), "w") as f:
    f.write("send_anonymous_usage_stats: false\n")
os.environ["HOME"] = home

from soda.scan import Scan  # noqa: E402

CHECKS = """
checks for orders:
  - row_count > 0
  - missing_count(customer_id) = 0
"""

MISSING_COLUMN = """
checks for orders:
  - missing_count(discount_code) = 0
"""


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scan(config, checks, data_timestamp):
    import datetime as dt

    sc = Scan()
    sc.set_data_source_name("shop")
    sc.set_scan_definition_name("orders_nightly")
    sc.add_configuration_yaml_str(config)
    sc.add_sodacl_yaml_str(checks)
    # What `soda scan -t` sets (soda/cli/cli.py); the Python API has no setter.
    sc._data_timestamp = dt.datetime.fromisoformat(data_timestamp)
    sc.execute()
    return sc.get_scan_results()


def pg_config(host, port, user, database):
    return f"""
data_source shop:
  type: postgres
  host: {host}
  port: {port}
  username: {user}
  password: unused
  database: {database}
  schema: public
"""


def dump(doc, path):
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    text = json.dumps(doc, indent=2, default=str)
    # Tracebacks carry this machine's site-packages path.
    text = text.replace(site, "<site-packages>")
    with open(path, "w") as f:
        f.write(text + "\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cfg = pg_config("127.0.0.1", closed_port(), "postgres", "shop")
    dump(scan(cfg, CHECKS, "2024-05-03T01:00:00+00:00"), os.path.join(out, "connection_error.json"))
    if os.environ.get("PGPORT"):
        import psycopg2

        env = os.environ
        conn = psycopg2.connect(host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], dbname=env["PGDATABASE"])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS orders")
            cur.execute("CREATE TABLE orders (order_id int, customer_id int)")
            cur.execute("INSERT INTO orders VALUES (1, 10), (2, NULL)")
        conn.close()
        cfg = pg_config(env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"])
        dump(scan(cfg, MISSING_COLUMN, "2024-05-03T01:00:00+00:00"), os.path.join(out, "missing_column.json"))


if __name__ == "__main__":
    main()

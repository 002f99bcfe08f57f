#!/usr/bin/env python3
"""gateway.openapi: docs/openapi/gateway.yaml against a running gasoline-gateway, and a Python service that uses
only that document.

A real gasoline-kv (an admin token and scoped credentials of namespace `shop`), a real gasoline-worker sidecar and
example app serving pool shop.orders (so workflows complete), and gasoline-gateway, all on loopback. The checking
client (tests/support/openapi_check.py) knows the gateway only through the document: every answer's status must be
documented for its operation and every body must validate against the documented schema. Every operation of the
document must be exercised. Then clients/python/example_service.py, a service written against the document alone,
dispatches, waits for and lists workflows through the gateway.

usage: openapi_test.py BIN_DIR OPENAPI_YAML EXAMPLE_SERVICE
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from openapi_check import CheckedClient, fail, stop, wait_for  # noqa: E402

ADMIN = "gateway-test-admin-token-0123456789"
SHOP_CLIENT = "gateway-test-shop-client-0123456789"
SHOP_WORKER = "gateway-test-shop-worker-0123456789"


def port_of(path):
    return wait_for(f"the port file {os.path.basename(path)}",
                    lambda: os.path.exists(path) and open(path).read().strip())


def start(tmp, bin_dir):
    token_file, creds = os.path.join(tmp, "token"), os.path.join(tmp, "credentials")
    with open(token_file, "w") as f:
        f.write(ADMIN + "\n")
    with open(creds, "w") as f:
        f.write(f"client shop {SHOP_CLIENT}\nworker shop {SHOP_WORKER}\n")
    worker_token = os.path.join(tmp, "worker-token")
    with open(worker_token, "w") as f:
        f.write(SHOP_WORKER + "\n")
    procs = []

    def run(name, argv):
        log = open(os.path.join(tmp, name + ".log"), "w")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    kv_port = os.path.join(tmp, "kv.port")
    run("kv", [os.path.join(bin_dir, "gasoline-kv"), "--data-dir", os.path.join(tmp, "db"), "--token-file",
               token_file, "--credentials-file", creds, "--listen", "127.0.0.1:0", "--port-file", kv_port,
               "--metrics-listen", "", "--no-fsync", "--ping-interval-ms", "100"])
    kv = "127.0.0.1:" + port_of(kv_port)
    api_port = os.path.join(tmp, "api.port")
    run("worker", [os.path.join(bin_dir, "gasoline-worker"), "--kv", kv, "--token-file", worker_token,
                   "--pool", "shop.orders", "--api-port", "0", "--port-file", api_port, "--ping-interval", "100ms",
                   "--cgroup-root", os.path.join(tmp, "no-cgroup")])
    run("app", [os.path.join(bin_dir, "gasoline-example-app"), "--api", "127.0.0.1:" + port_of(api_port),
                "--wait-ms", "500"])
    gw_port = os.path.join(tmp, "gateway.port")
    run("gateway", [os.path.join(bin_dir, "gasoline-gateway"), "--kv", kv, "--listen", "127.0.0.1:0",
                    "--port-file", gw_port])
    return procs, "http://127.0.0.1:" + port_of(gw_port)


def scenario(doc, base):
    gw = CheckedClient(doc, base, SHOP_CLIENT)
    assert gw.check("health")[0] == 200
    assert gw.check("ready")[0] == 200

    # Dispatch: created, then the same id again is the existing workflow; without an id the gateway names it.
    status, d = gw.check("dispatch", body={"pool": "shop.orders", "name": "noop", "id": "gw-1", "input": {"n": 1}})
    assert status == 201 and d == {"id": "gw-1", "existing": False}, d
    status, d = gw.check("dispatch", body={"pool": "shop.orders", "name": "noop", "id": "gw-1"})
    assert status == 200 and d["existing"] is True, d
    status, d = gw.check("dispatch", body={"pool": "shop.orders", "name": "noop", "idempotency_key": "order-7"})
    assert status == 201 and d["id"].startswith("wf_"), d
    status, again = gw.check("dispatch", body={"pool": "shop.orders", "name": "noop", "idempotency_key": "order-7"})
    assert status == 200 and again == {"id": d["id"], "existing": True}, again
    # A batch, with one workflow outside the credential's namespace: refused alone, the others start.
    batch = [{"pool": "shop.orders", "name": "noop", "id": f"gw-batch-{i}"} for i in range(5)]
    batch.append({"pool": "billing.invoices", "name": "noop", "id": "gw-elsewhere"})
    status, b = gw.check("dispatchBatch", body={"workflows": batch})
    assert status == 200 and [r["status"] for r in b["results"]] == [201] * 5 + [403], b
    assert b["results"][5]["body"]["error"]["code"] == "permission_denied", b

    ids = ["gw-1", d["id"]] + [f"gw-batch-{i}" for i in range(5)]
    wait_for("the pool's worker to complete every workflow",
             lambda: all(gw.check("getWorkflow", {"id": i})[1]["status"] == "complete" for i in ids), 30)
    status, w = gw.check("getWorkflow", {"id": "gw-1"})
    assert status == 200 and w["pool"] == "shop.orders" and w["input"] == {"n": 1} and w["steps"] == 1, w

    # Listing follows the cursor: full pages carry next, the last page does not.
    seen, query, pages = [], {"status": "complete", "limit": 3}, 0
    while True:
        status, page = gw.check("listWorkflows", {"pool": "shop.orders"}, query=query)
        assert status == 200, page
        pages += 1
        seen += [x["id"] for x in page["workflows"]]
        if "next" not in page:
            break
        assert len(page["workflows"]) == 3, page
        query = dict(query, after=page["next"])
    assert sorted(seen) == sorted(ids) and pages == 3, (seen, pages)

    # Signal and cancel a workflow due far in the future.
    gw.check("dispatch", body={"pool": "shop.orders", "name": "order", "id": "gw-later", "run_at": 4102444800000})
    status, s = gw.check("signal", {"id": "gw-later"}, body={"name": "payment", "body": {"ok": 1}, "signal_id": "s1"})
    assert status == 200 and s["duplicate"] is False, s
    status, s = gw.check("signal", {"id": "gw-later"}, body={"name": "payment", "signal_id": "s1"})
    assert status == 200 and s["duplicate"] is True, s
    status, x = gw.check("cancel", {"id": "gw-later"}, body={"reason": "test"})
    assert status == 200 and x["status"] == "cancelled" and x["already"] is False, x
    status, x = gw.check("cancel", {"id": "gw-later"}, raw_body=b"")
    assert status == 200 and x["already"] is True, x

    # Errors, as documented.
    assert gw.check("dispatch", body={"pool": "shop.orders"})[0] == 400
    assert gw.check("dispatch", body={"pool": "shop.orders", "name": "noop", "id": "gw-1x", "sleep": 1})[0] == 400
    assert gw.check("dispatch", body={"pool": "billing.invoices", "name": "noop"})[0] == 403
    assert gw.check("getWorkflow", {"id": "no/such workflow"})[0] == 404
    assert gw.check("signal", {"id": "gw-1"}, body={"name": "late"})[0] == 409  # it has ended
    assert gw.check("signal", {"id": "gw-1"}, body={})[0] == 400
    assert gw.check("cancel", {"id": "nope"})[0] == 404
    assert gw.check("listWorkflows", {"pool": "shop.orders"}, query={"limit": 0})[0] == 400
    assert gw.check("listWorkflows", {"pool": "billing.invoices"})[0] == 403
    assert gw.check("dispatchBatch", body={"workflows": []})[0] == 400
    anonymous = CheckedClient(doc, base, None)
    status, e = anonymous.check("getWorkflow", {"id": "gw-1"})
    assert status == 401 and "Bearer" in e["error"]["message"], e
    wrong = CheckedClient(doc, base, "not-a-token-of-this-kv-0123456789")
    status, e = wrong.check("dispatch", body={"pool": "shop.orders", "name": "noop"})
    assert status == 401 and e["error"]["code"] == "unauthenticated", e
    # The admin token reads every pool.
    admin = CheckedClient(doc, base, ADMIN)
    assert admin.check("getWorkflow", {"id": "gw-1"})[0] == 200
    status, text = gw.check("metrics")
    assert status == 200 and 'gasoline_gateway_requests_total{code="201",route="dispatch"}' in text, text[:400]
    return gw.exercised | anonymous.exercised | wrong.exercised | admin.exercised, set(gw.operations)


def main():
    bin_dir, doc_path, example = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(doc_path) as f:
        doc = yaml.safe_load(f)
    tmp = tempfile.mkdtemp(prefix="gasoline-gateway-")
    procs = []
    ok = False
    try:
        procs, base = start(tmp, bin_dir)
        exercised, operations = scenario(doc, base)
        missing = sorted(operations - exercised)
        if missing:
            fail(f"operations of {doc_path} that no step exercised: {missing}")
        print(f"gateway.openapi: {len(operations)} operations of {os.path.basename(doc_path)} answer as documented")
        # A service written against the document alone.
        out = subprocess.run([sys.executable, example, doc_path, base, "shop.orders", "25"], capture_output=True,
                             text=True, timeout=120, env=dict(os.environ, GASOLINE_TOKEN=SHOP_CLIENT))
        if out.returncode != 0:
            fail(f"example_service.py exited {out.returncode}: {out.stderr[-2000:]}{out.stdout[-500:]}")
        print(f"gateway.openapi: example_service.py: {out.stdout.strip()}")
        if '"completed": 25' not in out.stdout:
            fail(f"example_service.py did not report 25 completed workflows: {out.stdout}")
        ok = True
    finally:
        stop(procs, tmp, ("gateway", "kv", "worker", "app"), not ok)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

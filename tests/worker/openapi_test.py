#!/usr/bin/env python3
"""worker.openapi: docs/openapi/app-api.yaml against a running sidecar.

A real gasoline-kv and a real gasoline-worker on loopback. The client below knows nothing of the app API but the
OpenAPI document (tests/support/openapi_check.py over clients/python/gasoline_gateway.py): it finds each
operation by its operationId, builds the URL from the document's path template, and checks every answer: its
status is one the operation documents, and its body validates against the documented schema (jsonschema). Every operation of the document must be exercised, so a route added to the document without a
test, or a document that drifted from the server, fails here.

usage: openapi_test.py BIN_DIR OPENAPI_YAML
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from openapi_check import CheckedClient, fail, stop, wait_for  # noqa: E402


def start(tmp, bin_dir):
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("openapi-test-token-0123456789\n")
    kv_port, api_port = os.path.join(tmp, "kv.port"), os.path.join(tmp, "api.port")
    procs = []
    kv_log = open(os.path.join(tmp, "kv.log"), "w")
    procs.append(subprocess.Popen(
        [os.path.join(bin_dir, "gasoline-kv"), "--data-dir", os.path.join(tmp, "db"), "--token-file", token_file,
         "--listen", "127.0.0.1:0", "--port-file", kv_port, "--metrics-listen", "", "--no-fsync",
         "--ping-interval-ms", "100"], stdout=kv_log, stderr=subprocess.STDOUT))
    wait_for("the kv's port file", lambda: os.path.exists(kv_port) and open(kv_port).read().strip())
    kv = "127.0.0.1:" + open(kv_port).read().strip()
    worker_log = open(os.path.join(tmp, "worker.log"), "w")
    procs.append(subprocess.Popen(
        [os.path.join(bin_dir, "gasoline-worker"), "--kv", kv, "--token-file", token_file, "--pool", "openapi.test",
         "--api-port", "0", "--port-file", api_port, "--ping-interval", "100ms", "--drain-timeout", "5s",
         "--cgroup-root", os.path.join(tmp, "no-cgroup")], stdout=worker_log, stderr=subprocess.STDOUT))
    wait_for("the sidecar's port file", lambda: os.path.exists(api_port) and open(api_port).read().strip())
    return procs, "http://127.0.0.1:" + open(api_port).read().strip()


def scenario(api):
    ready = lambda: api.check("ready")[0] == 200  # noqa: E731
    wait_for("the sidecar to be ready", ready)

    # Dispatch, poll, commit one step.
    status, d = api.check("dispatch", body={"name": "noop", "input": {"n": 1}, "id": "openapi-1"})
    assert status == 201 and d["id"] == "openapi-1", d
    status, d = api.check("dispatch", body={"name": "noop", "input": {"n": 1}, "id": "openapi-1"})
    assert status == 200 and d["existing"] is True, d
    status, polled = api.check("pollTasks", query={"max": 1, "wait": "10s"})
    assert status == 200 and len(polled["tasks"]) == 1, polled
    task = polled["tasks"][0]
    assert task["workflow_id"] == "openapi-1" and task["input"] == {"n": 1}, task
    status, c = api.check("postResult", {"token": task["token"]}, body={"complete": {"output": {"ok": True}}})
    assert status == 200 and c["duplicate"] is False, c
    status, c = api.check("postResult", {"token": task["token"]}, body={"complete": {"output": {"ok": True}}})
    assert status in (200, 409), c  # a re-post after a lost answer: a duplicate, never a second commit
    status, w = api.check("getWorkflow", {"id": "openapi-1"})
    assert status == 200 and w["status"] == "complete" and w["output"] == {"ok": True} and w["steps"] == 1, w

    # Two tasks committed in one batch.
    for i in (2, 3):
        api.check("dispatch", body={"name": "noop", "id": f"openapi-{i}"})
    tasks = []
    wait_for("two tasks", lambda: tasks.extend(api.check("pollTasks", query={"max": 2, "wait": "2s"})[1]["tasks"])
             or len(tasks) >= 2)
    status, b = api.check("postResults", body={"results": [{"token": t["token"], "complete": {}} for t in tasks]})
    assert status == 200 and [r["status"] for r in b["results"]] == [200, 200], b

    # Signal and cancel a workflow the app holds no task of.
    api.check("dispatch", body={"name": "order", "id": "openapi-signal", "run_at": 4102444800000})
    status, s = api.check("signal", {"id": "openapi-signal"}, body={"name": "payment", "body": {"card": "4242"},
                                                                  "signal_id": "sig-1"})
    assert status == 200 and s["duplicate"] is False, s
    status, s = api.check("signal", {"id": "openapi-signal"}, body={"name": "payment", "signal_id": "sig-1"})
    assert status == 200 and s["duplicate"] is True, s
    status, x = api.check("cancel", {"id": "openapi-signal"}, body={"reason": "test"})
    assert status == 200 and x["status"] == "cancelled", x
    status, x = api.check("cancel", {"id": "openapi-signal"}, raw_body=b"")
    assert status == 200 and x["already"] is True, x

    # Errors, as documented.
    assert api.check("getWorkflow", {"id": "no/such workflow"})[0] == 404
    assert api.check("pollTasks", query={"max": 0})[0] == 400
    assert api.check("dispatch", body={"input": {}})[0] == 400
    assert api.check("postResult", {"token": "1.openapi-1"}, body={"nonsense": {}})[0] == 400
    assert api.check("postResults", body={"results": "not a list"})[0] == 400
    assert api.check("signal", {"id": "openapi-1"}, body={"name": "late"})[0] == 409  # it has ended

    status, h = api.check("health")
    assert status == 200 and h["connected"] is True, h
    status, text = api.check("metrics")
    assert status == 200 and "gasoline_worker" in text, text[:200]

    # Last: the drain takes the worker out of service, and readiness says so.
    status, summary = api.check("drain")
    assert status == 200 and summary["drained"] is True, summary
    status, r = api.check("ready")
    assert status == 503 and r["reason"] == "draining", r


def main():
    bin_dir, doc_path = sys.argv[1], sys.argv[2]
    with open(doc_path) as f:
        doc = yaml.safe_load(f)
    tmp = tempfile.mkdtemp(prefix="gasoline-openapi-")
    procs = []
    ok = False
    try:
        procs, base = start(tmp, bin_dir)
        api = CheckedClient(doc, base)
        scenario(api)
        missing = sorted(set(api.operations) - api.exercised)
        if missing:
            fail(f"operations of {doc_path} that no step exercised: {missing}")
        print(f"worker.openapi: {len(api.operations)} operations of {os.path.basename(doc_path)} answer as documented")
        ok = True
    finally:
        stop(procs, tmp, ("worker", "kv"), not ok)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

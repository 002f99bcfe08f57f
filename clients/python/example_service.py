#!/usr/bin/env python3
"""A web backend's view of Gasoline: dispatch workflows through gasoline-gateway and read them back, with nothing
but the gateway's OpenAPI document (through gasoline_gateway.py). What a Python service needs to start work that
the pool's workers run.

usage: example_service.py OPENAPI_YAML GATEWAY_URL POOL [COUNT [WORKFLOW]]
       the bearer token comes from $GASOLINE_TOKEN (a client credential of the pool's namespace)
It dispatches COUNT workflows named WORKFLOW (default `noop`) in one batch (each named, so a retry is exact), waits until they completed,
pages through the pool's completed workflows to find them, and prints one JSON summary line.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gasoline_gateway  # noqa: E402


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    document, url, pool = sys.argv[1], sys.argv[2], sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    workflow = sys.argv[5] if len(sys.argv) > 5 else "noop"
    gw = gasoline_gateway.Client.from_file(document, url, os.environ.get("GASOLINE_TOKEN"))
    run = f"example-{os.getpid()}-{int(time.time())}"
    ids = [f"{run}-{i}" for i in range(count)]
    answer = gw.call("dispatchBatch", body={"workflows": [
        {"pool": pool, "name": workflow, "id": wf, "input": {"i": i}} for i, wf in enumerate(ids)]})
    refused = [r for r in answer["results"] if r["status"] not in (200, 201)]
    if refused:
        sys.exit(f"example_service: {len(refused)} dispatches refused, first: {refused[0]}")
    deadline = time.monotonic() + 60
    waiting = set(ids)
    while waiting and time.monotonic() < deadline:
        waiting = {wf for wf in waiting if gw.call("getWorkflow", path={"id": wf})["status"] != "complete"}
        if waiting:
            time.sleep(0.1)
    if waiting:
        sys.exit(f"example_service: {len(waiting)} of {count} workflows not complete after 60 s")
    found = {w["id"] for w in gw.pages("listWorkflows", path={"pool": pool},
                                       query={"status": "complete", "limit": 3})}
    missing = set(ids) - found
    if missing:
        sys.exit(f"example_service: listing the pool's completed workflows missed {sorted(missing)[:5]}")
    print(json.dumps({"dispatched": count, "completed": count, "listed": len(found)}))


if __name__ == "__main__":
    main()

"""A client that calls an OpenAPI 3 document's operations and checks every answer against the document.

Built on the user-facing client (clients/python/gasoline_gateway.py), which knows nothing but the document: each
answer's status must be one the operation lists, its Content-Type the documented one, and its JSON body must
validate against the documented schema (jsonschema). `exercised` records the operations called, so a test can
require that every operation of the document was.
"""
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from gasoline_gateway import Client  # noqa: E402


def fail(message):
    raise AssertionError(message)


def wait_for(what, condition, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    fail(f"timed out after {timeout_s} s waiting for {what}")


class CheckedClient(Client):
    def __init__(self, document, base_url, token=None):
        super().__init__(document, base_url, token)
        self.exercised = set()

    def resolve(self, node):
        """The node with every $ref replaced by what it names (jsonschema then needs no resolver)."""
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.document
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                return self.resolve(target)
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node

    def check(self, operation_id, path=None, query=None, body=None, raw_body=None):
        """(status, parsed body) of one call, after checking the answer against the document."""
        r = self.request(operation_id, path, query, body, raw_body)
        template, method, op = self.operations[operation_id]
        responses = self.resolve(op["responses"])
        where = f"{method} {template} ({operation_id})"
        if str(r.status) not in responses:
            fail(f"{where} answered {r.status}, which the document does not list ({sorted(responses)}): "
                 f"{r.text[:300]}")
        content = responses[str(r.status)].get("content", {})
        parsed = r.text
        if "application/json" in content:
            if "json" not in r.content_type:
                fail(f"{where} {r.status}: Content-Type {r.content_type!r}, the document says application/json")
            parsed = json.loads(r.text)
            try:
                jsonschema.validate(parsed, content["application/json"]["schema"])
            except jsonschema.ValidationError as e:
                fail(f"{where} {r.status}: the body does not match the document: {e.message}\n{r.text[:500]}")
        elif "text/plain" in content and not r.content_type.startswith("text/plain"):
            fail(f"{where} {r.status}: Content-Type {r.content_type!r}, the document says text/plain")
        self.exercised.add(operation_id)
        return r.status, parsed


def stop(procs, tmp, logs, print_logs):
    """Ends the test's processes (SIGTERM, then SIGKILL after 15 s), newest first; prints the tail of each of
    `logs` (names of TMP/NAME.log) when `print_logs`, so a failure says what the servers saw."""
    for p in reversed(procs):
        p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if print_logs:
        for name in logs:
            path = os.path.join(tmp, name + ".log")
            if os.path.exists(path):
                print(f"--- {name}.log ---", file=sys.stderr)
                print(open(path).read()[-3000:], file=sys.stderr)

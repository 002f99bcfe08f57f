"""A Python client of gasoline-gateway built from its OpenAPI document alone (docs/openapi/gateway.yaml).

Nothing here knows the gateway's routes: each operation is found by its operationId, its URL is built from the
document's path template, and its parameters go where the document says. A newer document brings its new
operations with it. Standard library plus PyYAML (Debian: python3-yaml).

    import gasoline_gateway
    gw = gasoline_gateway.Client.from_file("docs/openapi/gateway.yaml", "http://gateway:7490", token)
    wf = gw.call("dispatch", body={"pool": "shop.orders", "name": "checkout", "input": {"cart": 7}})
    print(gw.call("getWorkflow", path={"id": wf["id"]})["status"])
    for w in gw.pages("listWorkflows", path={"pool": "shop.orders"}, query={"status": "complete"}):
        print(w["id"])
"""
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml


class GatewayError(Exception):
    """An error answer: its HTTP status and the document's {"error": {"code", "message"}}."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Response:
    def __init__(self, status, content_type, text, headers):
        self.status, self.content_type, self.text, self.headers = status, content_type, text, headers

    def json(self):
        return json.loads(self.text)


class Client:
    def __init__(self, document, base_url, token=None, timeout_s=30.0):
        self.document = document
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.operations = {}
        for path, item in document["paths"].items():
            for method, op in item.items():
                self.operations[op["operationId"]] = (path, method.upper(), op)

    @classmethod
    def from_file(cls, path, base_url, token=None, **kwargs):
        with open(path) as f:
            return cls(yaml.safe_load(f), base_url, token, **kwargs)

    def request(self, operation_id, path=None, query=None, body=None, raw_body=None):
        """One call as it went: the status, Content-Type and text, whatever the status."""
        if operation_id not in self.operations:
            raise KeyError(f"{operation_id!r} is not an operation of the document: {sorted(self.operations)}")
        template, method, _ = self.operations[operation_id]
        url_path = template
        for name, value in (path or {}).items():
            url_path = url_path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        if "{" in url_path:
            raise ValueError(f"{operation_id}: path parameters missing in {url_path}")
        url = self.base + url_path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return Response(r.status, r.headers.get("Content-Type", ""), r.read().decode(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers.get("Content-Type", ""), e.read().decode(), dict(e.headers))

    def call(self, operation_id, path=None, query=None, body=None, retries=5):
        """The parsed answer of a successful call; GatewayError otherwise. 429 and 503 are retried after the
        Retry-After the gateway sent (every operation of the gateway is safe to repeat once the workflow and the
        signal are named: give `id` or `idempotency_key`, and `signal_id`, to make a retry exact)."""
        for attempt in range(retries + 1):
            r = self.request(operation_id, path, query, body)
            if r.status in (429, 503) and attempt < retries:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            if r.status >= 400:
                try:
                    err = r.json()["error"]
                except (ValueError, KeyError, TypeError):
                    err = {"code": "http", "message": r.text[:200]}
                raise GatewayError(r.status, err.get("code", ""), err.get("message", ""))
            return r.json() if "json" in r.content_type else r.text
        raise AssertionError("unreachable")

    def pages(self, operation_id, path=None, query=None, items="workflows"):
        """Every item of a paged list operation, following `next` until a page has none."""
        query = dict(query or {})
        while True:
            page = self.call(operation_id, path, query)
            yield from page[items]
            if "next" not in page:
                return
            query["after"] = page["next"]

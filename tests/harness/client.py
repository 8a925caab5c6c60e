"""The one HTTP client of the tests, the load test and the bench: HTTP/1.1 to
one port on 127.0.0.1, a new connection per request or one kept alive."""

import http.client
import json
import urllib.parse

BASE = "/deploy"

# What a request on a reused keep-alive connection meets when httpd closed it
# meanwhile (KeepAliveTimeout, a graceful restart): the request may be resent.
KEEPALIVE_RACE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive .get()
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"body is not JSON ({e}): {self.body[:500]!r}")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __iter__(self):  # status, headers, body = response
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Client:
    """Requests to 127.0.0.1:PORT. With keep_alive, one connection serves every
    request (a request that meets the keep-alive race is sent once more on a
    new one); without, each request has its own connection."""

    def __init__(self, port, timeout=10, keep_alive=False):
        self.port = port
        self.timeout = timeout
        self.keep_alive = keep_alive
        self._conn = None

    def connection(self, timeout=None):
        """A new connection of the caller's own (streams, pipelined bursts)."""
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=self.timeout if timeout is None else timeout)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None, timeout=None):
        if path.startswith("http://"):
            path = urllib.parse.urlsplit(path)._replace(scheme="", netloc="").geturl()
        if isinstance(body, str):
            body = body.encode()
        headers = dict(headers or {})
        if not self.keep_alive:
            conn = self.connection(timeout)
            try:
                return self._exchange(conn, method, path, body, headers)
            finally:
                conn.close()
        for attempt in range(2):
            if self._conn is None:
                self._conn = self.connection(timeout)
            try:
                return self._exchange(self._conn, method, path, body, headers)
            except KEEPALIVE_RACE:
                self.close()
                if attempt:
                    raise
            except BaseException:
                self.close()
                raise

    @staticmethod
    def _exchange(conn, method, path, body, headers):
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def auto(self):
        """?auto, parsed (harness.status.parse_auto)."""
        from .status import parse_auto  # status reads BASE from here
        r = self.get(f"{BASE}/?auto")
        if r.status != 200:
            raise AssertionError(f"GET {BASE}/?auto answered {r.status}: {r.body[:200]!r}")
        return parse_auto(r.text)

    def newest_id(self):
        jobs = self.get(f"{BASE}/jobs?limit=1").json()
        return jobs[0]["id"] if jobs else 0

    def jobs_above(self, floor):
        """{id: state} of every job with id > floor, paging GET BASE/jobs."""
        found, before = {}, None
        while True:
            q = "limit=1000" + (f"&before={before}" if before else "")
            r = self.get(f"{BASE}/jobs?{q}")
            if r.status != 200:
                raise AssertionError(f"GET {BASE}/jobs?{q} answered {r.status}: {r.body[:200]!r}")
            page = r.json()
            for job in page:
                if job["id"] > floor:
                    found[job["id"]] = job["state"]
            if not page or page[-1]["id"] <= floor:
                return found
            before = page[-1]["id"]

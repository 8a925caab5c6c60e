"""A client of mod_deploy's text/event-stream routes, read event by event.

Parses the stream as the HTML EventSource does (fields `event`, `id`, `data`,
comment lines starting with `:`, a blank line ends an event) but keeps more
than a browser would: whether each event carried an `id:` line, when it
arrived, and the comments seen. Every read is bounded by the socket timeout.
"""

import http.client
import json
import time

from .httpd_env import FINAL_STATES, TIMEOUT_SCALE


class Event:
    def __init__(self, name, event_id, data, received_at):
        self.name = name          # "message" when the event had no event: line
        self.id = event_id        # None when the event had no id: line
        self.data = data          # data: lines joined with "\n"
        self.received_at = received_at

    def json(self):
        try:
            return json.loads(self.data)
        except ValueError as e:
            raise AssertionError(f"data of event {self.name} id {self.id} is not JSON ({e}): "
                                 f"{self.data[:300]!r}")

    def __repr__(self):
        return f"<Event {self.name} id={self.id} {self.data[:120]!r}>"


class EventStream:
    """GET path as an event stream. status/headers are those of the answer; a
    non-200 answer is read whole into body."""

    def __init__(self, env, path, headers=None, timeout=20, source=None):
        """source: the client's own loopback address (127.0.0.N), to act as
        several clients."""
        opened_at = time.monotonic()
        timeout *= TIMEOUT_SCALE
        conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        conn.request("GET", path, headers=dict(headers or {}))
        self._attach(conn, conn.getresponse(), path, timeout, opened_at)

    @classmethod
    def of_response(cls, conn, response, path, timeout):
        """The stream of a GET path that the caller sent on conn itself (the load
        test, which shuts its connections down from another thread)."""
        stream = cls.__new__(cls)
        stream._attach(conn, response, path, timeout, time.monotonic())
        return stream

    def _attach(self, conn, response, path, timeout, opened_at):
        self.path = path
        self.timeout = timeout
        self.opened_at = opened_at
        self.conn = conn
        self.response = response
        self.status = self.response.status
        self.headers = self.response.headers
        self.body = self.response.read() if self.status != 200 else None
        self.comments = []
        self.ended_at = None
        self.events = []  # every event read so far

    def _readline(self):
        try:
            line = self.response.readline()
        except TimeoutError:
            raise AssertionError(f"{self.path}: no line within {self.timeout}s; "
                                 f"events so far: {self.events[-5:]}")
        return line

    def next_event(self):
        """The next event, or None when the server ended the stream."""
        name, event_id, data = None, None, []
        started = False
        while True:
            raw = self._readline()
            if not raw:
                self.ended_at = time.monotonic()
                assert not started, f"{self.path}: stream ended inside an event: {name} {data}"
                return None
            assert raw.endswith(b"\n"), f"{self.path}: line without end: {raw!r}"
            line = raw[:-1].decode("utf-8")
            if line.endswith("\r"):
                line = line[:-1]
            if line == "":
                if not started:
                    continue
                event = Event(name or "message", event_id, "\n".join(data), time.monotonic())
                self.events.append(event)
                return event
            if line.startswith(":"):
                self.comments.append(line)
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            started = True
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
            else:
                raise AssertionError(f"{self.path}: unexpected field {line!r}")

    def read_until(self, predicate, what):
        """Reads events until predicate(event); returns the events read, that one last."""
        read = []
        while True:
            event = self.next_event()
            assert event is not None, \
                f"{self.path}: stream ended before {what}; read: {read[-10:]}"
            read.append(event)
            if predicate(event):
                return read

    def __iter__(self):
        """The events, as they come, until the server ends the stream."""
        while (event := self.next_event()) is not None:
            yield event

    def read_to_end(self):
        """Reads until the server ends the stream; returns the events read."""
        return list(self)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_job_event(event, job_id=None, predicate=None):
    if event.name != "job":
        return False
    job = event.json()
    return (job_id is None or job["id"] == job_id) and (predicate is None or predicate(job))


def is_final_job_event(event, job_id=None):
    return is_job_event(event, job_id, lambda j: j["state"] in FINAL_STATES)

"""The ?auto answer of the deploy handler (mod_status's machine-readable form: one
`Key: N` line per counter), parsed the one way the tests, the load test and the
bench read it."""

import re

from .client import BASE

AUTO_LINE = re.compile(r"([A-Za-z]+): (\d+)")
# The one line whose value is text: the node's DeployNodeName.
NODE_NAME_LINE = re.compile(r"(DeployNodeName): ([A-Za-z0-9][A-Za-z0-9._-]{0,63})")


def parse_auto(text):
    """{key: int} of a ?auto body (DeployNodeName: its text); fails on a line
    that is not `Key: N` or a key given twice."""
    values = {}
    for line in text.splitlines():
        m = NODE_NAME_LINE.fullmatch(line) or AUTO_LINE.fullmatch(line)
        assert m, f"not a 'Key: value' line: {line!r}"
        assert m.group(1) not in values, f"key {m.group(1)} twice"
        values[m.group(1)] = m.group(2) if m.group(1) == "DeployNodeName" else int(m.group(2))
    return values


def auto_status(env):
    """GET BASE/?auto of env, parsed."""
    r = env.get(f"{BASE}/?auto")
    assert r.status == 200, r
    return parse_auto(r.text)


def state_total(values, state):
    """TotalSucceeded, TotalLost... of parsed ?auto values, for a job state."""
    return values["Total" + "".join(w.capitalize() for w in state.split("_"))]


def total(env, state):
    """TotalSucceeded, TotalLost... of env's ?auto."""
    return state_total(auto_status(env), state)


def finished_total(values):
    """Jobs in a final state, from parsed ?auto values (every Total* counter)."""
    return sum(v for k, v in values.items() if k.startswith("Total"))

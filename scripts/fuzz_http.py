"""The fuzz run over HTTP: the page's events and the API of a running app (`python -m scripts.fuzz --http URL`).

Payloads come from `scripts.fuzz`; the page events are sent the way the page sends them (the live guesses as one
direct call, the others through Gradio's queue), with fuzzed event data and component values.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict

from scripts.fuzz import describe, random_json, random_payload, random_temperature, real_drawings
from sketchlab.service import MAX_PAYLOAD_CHARS


def _post(url: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _queued(base: str, fn_index: int, data: list, event_data: object = None) -> dict:
    """One event through Gradio's queue, as the page sends it: join, then read that client's event stream to the end."""
    client_id = uuid.uuid4().hex[:12]
    body = {"fn_index": fn_index, "data": data, "event_data": event_data, "session_hash": client_id}
    status, text = _post(f"{base}/gradio_api/queue/join", body)
    if status != 200:
        return {"http": status, "error": text[:200].decode(errors="replace"), "title": "join refused"}
    with urllib.request.urlopen(f"{base}/gradio_api/queue/data?session_hash={client_id}", timeout=60) as stream:
        for line in stream:
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg.get("output") or {}
    return {"error": STREAM_DROPPED}


STREAM_DROPPED = "the stream ended without an answer"
MAX_REQUEST_BYTES = 4 * MAX_PAYLOAD_CHARS  # as app.MAX_REQUEST_BYTES (app.py imports gradio; this module does not)
CUT_OFF = ("no answer", "the stream ended")  # the server answered 413 and closed before the body was sent
GRADIO_INPUT_CHECK = "Could not preprocess input component"  # Gradio's own check of a value against its component


def _not_a_choice(components: dict, dep: dict, values: list) -> bool:
    """True when a value sent for one of the event's Dropdown inputs is not among that dropdown's choices."""
    for component_id, value in zip(dep["inputs"], values, strict=False):
        component = components.get(component_id, {})
        if component.get("type") == "dropdown":
            choices = [
                c[-1] if isinstance(c, list | tuple) else c for c in component.get("props", {}).get("choices", [])
            ]
            if value not in choices:
                return True
    return False


def run_http(url: str, cases: int, seed: int = 0, drawings: list[list] | None = None, log=print) -> dict:
    """Throw `cases` payloads at a running app's page events and API over HTTP (loopback only).

    Every answer must be data, an error raised as `gr.Error` (it carries a `duration`: the app's own messages and
    Gradio's range checks) or Gradio's refusal of a value its component cannot take; any other error is an
    exception the app did not turn into a message."""
    base = url.rstrip("/")
    if urllib.parse.urlsplit(base).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the HTTP fuzz runs against loopback addresses only")
    rng, drawings = random.Random(seed), drawings or real_drawings()
    config = json.loads(urllib.request.urlopen(f"{base}/config", timeout=30).read())
    deps = config["dependencies"]
    stats: dict[str, Counter] = defaultdict(Counter)
    failures = []
    components = {c["id"]: c for c in config.get("components", [])}
    health = next(i for i, d in enumerate(deps) if d.get("api_name") == "health")
    targets = [i for i in range(len(deps)) if i != health]
    before = _queued(base, health, []).get("data")
    for _ in range(cases):
        i = rng.choice(targets)
        dep = deps[i]
        name = str(dep.get("api_name") or i)
        values = [random_temperature(rng) if rng.random() < 0.5 else random_json(rng) for _ in dep["inputs"]]
        payload = random_payload(rng, drawings)
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        try:
            json.dumps(payload)
        except (RecursionError, ValueError):  # too deep for a JSON body: send the same depth as text
            payload = "[" * 200_000 + "]" * 200_000
        if values and name in ("classify", "complete"):
            values[0] = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        event = {"strokes": payload, "seq": rng.choice((1, -1, "x", None, 1e309))}
        oversized = len(json.dumps({"data": values, "event_data": event})) > MAX_REQUEST_BYTES
        try:
            if dep.get("queue") is False:  # the live guesses: one direct call, as the page makes it
                body = {"fn_index": i, "data": values, "event_data": event, "session_hash": uuid.uuid4().hex[:12]}
                status, text = _post(f"{base}/gradio_api/run/predict", body)
                out = json.loads(text) if text.startswith(b"{") else {"error": text[:200].decode(errors="replace")}
            else:
                out = _queued(base, i, values, event)
        except (OSError, ValueError) as e:
            out = {"error": f"no answer: {type(e).__name__}: {e}"}
        if oversized and (out.get("http") == 413 or str(out.get("error", "")).startswith(CUT_OFF)):
            stats[name]["refused: body over the limit"] += 1  # app.MAX_REQUEST_BYTES: 413, the rest left unread
        elif "error" not in out or out.get("error") is None and "data" in out:
            stats[name]["ok"] += 1
        elif "duration" in out or out.get("title") == "join refused":
            stats[name]["message"] += 1
        elif str(out.get("error", "")).startswith(GRADIO_INPUT_CHECK):  # a component refused the value
            stats[name]["refused by gradio"] += 1
        elif out.get("error") == STREAM_DROPPED and _not_a_choice(components, dep, values):
            # Gradio's Dropdown refuses a value outside its choices in preprocess (gradio.exceptions.Error, in the
            # app's log), and for a queued event Gradio 6.31 then closes the stream without a message. The page
            # cannot send such a value; the app never sees it.
            stats[name]["refused by gradio (dropdown value not a choice)"] += 1
        else:
            stats[name]["undocumented"] += 1
            failures.append({"event": name, "answer": str(out)[:300], "payload": describe(payload)})
            log(f"UNDOCUMENTED {name}: {failures[-1]['answer']}")
    after = _queued(base, health, []).get("data")
    return {"cases": sum(sum(c.values()) for c in stats.values()), "per_event": {k: dict(v) for k, v in stats.items()},
            "undocumented": failures, "healthy": before == after}  # fmt: skip

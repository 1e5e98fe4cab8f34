"""Generators and rules for the API contract test
(scripts/e2e/contract_test.go), loaded by Schemathesis.

A format names a language no JSON Schema keyword can state: the search
syntax of q, and the CEL conditions of destination filters. Schemathesis
draws valid values from these strategies; its negative cases break the
other keywords (type, maxLength, pattern), which the server refuses.

Rules between values, or on the keys of a map, that no keyword of OpenAPI
3.0 states either, each written in its operation's description and answered
with a 400 naming the field: each destination filter's and saved target's
name once; a range export of NDJSON (from_index, to_index) takes no filter
and ends after it starts; a consistency proof goes from the smaller tree
size to the larger; planned and alerted events are named from the
catalogue, and a planned event's schema compiles; enabled forwarding has a
URL and a write key, enabled alerts a URL and an event. map_case makes the
positive cases keep them (a negative case keeps its own fault); Go tests
cover the 400s.

Every URL of a forwarding or alerts body that the server could call is the
test's loopback sink, in every case: no generated host is ever called.
"""

import ast
import datetime
import json
import os
import re
import threading
import zlib

import schemathesis
from hypothesis import strategies as st

# Schemathesis's two workers are threads, and Hypothesis parses source files
# (ast.parse) to describe lambdas; on CPython 3.11 two parses at once can
# fail inside the interpreter ("AST constructor recursion depth mismatch"),
# a runtime error of the test tool, not of the API. One parse at a time.
_parse, _parse_lock = ast.parse, threading.Lock()


def _one_parse_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _one_parse_at_a_time

# Characters of a search word: no control character (Cc), no surrogate
# (Cs), no space of any kind (Z*: what Go's unicode.IsSpace counts beside
# the controls), and not the characters with a meaning in the syntax.
_word_chars = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
    exclude_characters='":-\\',
)
_word = st.text(_word_chars, min_size=1, max_size=16)
# A quoted phrase: words and spaces, with the two escapes of the syntax.
_phrase = st.lists(
    st.one_of(_word, st.just('\\"'), st.just("\\\\")), min_size=1, max_size=4
).map(lambda parts: '"' + " ".join(parts) + '"')
_value = st.one_of(_word, _phrase)
_text_qualifier = st.tuples(
    st.sampled_from(["event", "actor", "resource", "category", "resource_type", "EVENT", "Actor"]), _value
).map(lambda t: f"{t[0]}:{t[1]}")
_actor_type = st.sampled_from(["user", "access_token", "system", "USER"]).map(lambda v: "actor_type:" + v)
_day = st.dates(min_value=datetime.date(1970, 1, 2), max_value=datetime.date(2199, 12, 30))


def _moment(d: datetime.date, timestamp: bool) -> str:
    return d.isoformat() + ("T10:00:00Z" if timestamp else "")


_created_one = st.tuples(st.sampled_from(["", ">", ">=", "<", "<="]), _day, st.booleans()).map(
    lambda t: "created:" + t[0] + _moment(t[1], t[2])
)
_created_range = st.tuples(_day, st.integers(1, 400), st.sampled_from(["both", "open-start", "open-end"])).map(
    lambda t: "created:"
    + ("*" if t[2] == "open-start" else t[0].isoformat())
    + ".."
    + ("*" if t[2] == "open-end" else (t[0] + datetime.timedelta(days=t[1])).isoformat())
)
_negatable = st.one_of(_word, _phrase, _text_qualifier, _actor_type)
_term = st.one_of(
    st.tuples(st.booleans(), _negatable).map(lambda t: ("-" if t[0] else "") + t[1]),
    _created_one,
    _created_range,
)
search = st.lists(_term, max_size=6).map(" ".join)

schemathesis.openapi.format("audittrail-search", search)

# Conditions of destination filters: CEL over the event's fields, each
# cheap (the enabled filters' estimated cost per event has a budget: every
# leaf here is estimated at 15 units or less, so 50 filters of 4 leaves stay
# far within it) and comparing event only with catalogue names. The values
# compared are mostly the seeded events' (contract_test.go seedSealed: the
# four names below, in three categories, actors usr_0 to usr_2, resources
# src_0 to src_29), so a condition matches some stored events and not
# others, and a preview of it has something to count.
_catalogue_names = ["Source Created", "Source Deleted", "Warehouses Disabled", "Destination Created"]
_name = st.sampled_from(_catalogue_names)
_actor_value = st.sampled_from(["usr_0", "usr_1", "usr_2", "usr_owner", "Ada", "Owner", "ada@example.com", "user"])
_resource_value = st.integers(0, 31).map(lambda i: f"src_{i}") | st.sampled_from(["Web", "source"])
_field_value = st.one_of(
    st.tuples(st.just("actor"), st.sampled_from(["id", "name", "email", "type"]), _actor_value),
    st.tuples(st.just("resource"), st.sampled_from(["id", "name", "type"]), _resource_value),
    st.tuples(st.just("context"), st.sampled_from(["ip", "user_agent"]), st.just("203.0.113.1")),
)
_compare = st.tuples(_field_value, st.sampled_from(["==", "!=", "startsWith", "endsWith"])).map(
    lambda t: f"{t[0][0]}['{t[0][1]}'] {t[1]} '{t[0][2]}'"
    if t[1] in ("==", "!=")
    else f"{t[0][0]}['{t[0][1]}'].{t[1]}('{t[0][2][:5] if t[1] == 'startsWith' else t[0][2][-1:]}')"
)
_member = st.tuples(st.sampled_from(["actor", "resource"]), st.lists(st.integers(0, 29), min_size=1, max_size=4)).map(
    lambda t: f"{t[0]}['id'] in [" + ", ".join(f"'{'usr' if t[0] == 'actor' else 'src'}_{i}'" for i in t[1]) + "]"
)
_leaf = st.one_of(
    st.sampled_from(["true", "false", "category == 'Sources'", "category != 'Sources'", "has(properties.plan)",
                     "'id' in actor", "'email' in actor", "size(properties) == 0"]),
    _name.map(lambda n: f"event == '{n}'"),
    _name.map(lambda n: f"'{n}' != event"),
    st.lists(_name, min_size=1, max_size=3).map(lambda ns: "event in [" + ", ".join(f"'{n}'" for n in ns) + "]"),
    _compare,
    _member,
)
condition = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" && ", " || "]), inner).map(lambda t: "(" + t[0] + t[1] + t[2] + ")"),
        inner.map(lambda c: "!(" + c + ")"),
    ),
    max_leaves=4,
)

schemathesis.openapi.format("audittrail-condition", condition)


def _as_int(v):
    """v as a whole number: an int, or its decimal text (the coverage
    phase's query values); None otherwise."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.isascii() and v.isdigit():
        return int(v)
    return None


def _like(v, n):
    """n in the type of v."""
    return str(n) if isinstance(v, str) else n


def _unique_filter_names(case):
    """Each destination filter's name once."""
    _unique_names_in(case.body)


def _unique_names_in(body):
    filters = body.get("filters") if isinstance(body, dict) else None
    if not isinstance(filters, list):
        return
    seen = set()
    for i, f in enumerate(filters):
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            name, k = f["name"], 0
            while name in seen:
                k += 1
                name = f"filter {i}.{k}"
            f["name"] = name
            seen.add(name)


# The filters of the NDJSON export, which a leaf-index range excludes.
_export_filters = ("event", "category", "actor_type", "actor_id", "resource_type", "resource_id", "since", "until", "q")


def _range_without_filters(case):
    """A range export takes no filter, and its range is [from_index, to_index)."""
    query = case.query
    if not isinstance(query, dict) or ("from_index" not in query and "to_index" not in query):
        return
    for name in _export_filters:
        query.pop(name, None)
    lo, hi = _as_int(query.get("from_index")), _as_int(query.get("to_index"))
    if lo is not None and hi is not None and hi <= lo:
        query["from_index"] = _like(query["from_index"], hi)
        query["to_index"] = _like(query["to_index"], lo + 1 if hi == lo else lo)


def _older_first(case):
    """A consistency proof goes from the older (smaller) tree to the newer."""
    query = case.query
    if not isinstance(query, dict):
        return
    older, newer = _as_int(query.get("from")), _as_int(query.get("to"))
    if older is not None and newer is not None and older > newer:
        query["from"], query["to"] = query["to"], query["from"]


# Event names a workspace may plan or alert on: the catalogue's, which the
# test reads from GET /v1/catalogue into the file AUDITTRAIL_CONTRACT_CATALOGUE
# names (the stack allows no custom names).
_names = []


def _catalogue():
    if not _names:
        with open(os.environ["AUDITTRAIL_CONTRACT_CATALOGUE"], encoding="utf-8") as f:
            _names.extend(sorted(e["name"] for e in json.load(f)["events"]))
    return _names


def _catalogue_name(drawn, taken):
    """A catalogue name for a drawn name, none in taken: the same for the
    same draw, so a case reproduces."""
    names = _catalogue()
    i = zlib.crc32(str(drawn).encode("utf-8", "surrogatepass"))
    for k in range(len(names)):
        name = names[(i + k) % len(names)]
        if name not in taken:
            return name
    return None


# Characters no string or key of a settings body may hold (schemas/jsonlimit):
# the C0 controls but tab, line feed and carriage return, DEL, the C1
# controls; and surrogates, which are no UTF-8.
_refused = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")


def _clean(text):
    return _refused.sub("", text)


def _schema_of(value, depth=0):
    """A JSON Schema (draft 2020-12) built from a generated value's shape
    with the keywords owners write (type, properties, required, items,
    maxItems, maxLength, enum, minimum, maximum), keys and strings without
    the characters no settings body may hold, at most 7 levels deep."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        if abs(value) > 2**53:
            return {"type": "integer"}
        return {"type": "integer", "minimum": value} if value % 2 else {"type": "integer", "maximum": value}
    if isinstance(value, float):
        return {"type": "number", "maximum": value}
    if isinstance(value, str):
        if len(value) % 3 == 0:
            return {"enum": [_clean(value), None]}
        return {"type": "string", "maxLength": max(len(value), 1)}
    if isinstance(value, list):
        out = {"type": "array", "maxItems": len(value)}
        if value and depth < 6:
            out["items"] = _schema_of(value[0], depth + 1)
        return out
    if isinstance(value, dict):
        out = {"type": "object"}
        if depth < 6:
            out["properties"] = {_clean(k): _schema_of(v, depth + 1) for k, v in value.items()}
            out["required"] = sorted(out["properties"])[:2]
        return out
    return True


def _planned_events(case):
    """Catalogue names for the planned events, and a JSON Schema built from
    each generated object (a boolean or null stays: both mean a schema)."""
    _planned_in(case.body)


def _planned_in(plan, first=None):
    """_planned_events on the plan object plan; the first planned event is
    named first when first is given."""
    events = plan.get("events") if isinstance(plan, dict) else None
    if not isinstance(events, dict):
        return
    planned = {}
    for drawn, planned_event in events.items():
        name = first if first and not planned else _catalogue_name(drawn, planned)
        if name is None:
            break
        if isinstance(planned_event, dict) and isinstance(planned_event.get("properties"), dict):
            planned_event["properties"] = _schema_of(planned_event["properties"])
        planned[name] = planned_event
    plan["events"] = planned


# The operations that make the API (or the forwarder) call a user-supplied
# URL get the test's sink instead (AUDITTRAIL_CONTRACT_SINK, a loopback
# listener the stack's outbound policy allows): every URL of a forwarding or
# alerts body that the server could call is the sink's, in every case, so
# no request goes to a generated host. A negative case keeps a URL the
# server would never call (its own fault, maybe), and gets the sink's for
# any other (its fault is then elsewhere).
def _sink():
    return os.environ["AUDITTRAIL_CONTRACT_SINK"]


_placeholder_key = "wk_contract_0123456789"


def _url_slots(body):
    """(container, key, whether "" may remove it) of each URL in a
    forwarding or alerts body."""
    if not isinstance(body, dict):
        return
    if "webhook_url" in body:
        yield body, "webhook_url", True
    target = body.get("target")
    if isinstance(target, dict) and "url" in target:
        yield target, "url", True
    saved = body.get("saved_targets")
    if isinstance(saved, list):
        for t in saved:
            if isinstance(t, dict) and "url" in t:
                yield t, "url", False


def _never_called(url):
    """Whether the server would call url under no settings: empty (no URL),
    or refused by trackingplan.ValidateURL whatever else the body holds (too
    long, a space, control character or fragment, not http(s))."""
    return (
        url == ""
        or len(url) > 2048
        or "#" in url
        or any(ord(ch) <= 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in url)
        or not url.lower().startswith(("http://", "https://"))
    )


def _to_sink(case, positive):
    for container, key, removable in _url_slots(case.body):
        url = container[key]
        if not isinstance(url, str):
            continue
        if positive and url == "" and removable and not case.body.get("enabled"):
            continue  # "" removes the URL, which a disabled setting may do
        if positive or not _never_called(url):
            container[key] = _sink()


def _enabled_forwarding(case):
    """Forwarding: enabled needs a target URL and a write key; a saved
    target's name once among the targets."""
    body = case.body
    if not isinstance(body, dict):
        return
    if body.get("enabled") is True:
        target = body.setdefault("target", {})
        if isinstance(target, dict):
            target["url"] = _sink()
            if not str(target.get("write_key", "")).strip():
                target["write_key"] = _placeholder_key
    target = body.get("target")
    taken = {target["name"]} if isinstance(target, dict) and isinstance(target.get("name"), str) else set()
    for i, t in enumerate(body.get("saved_targets") or []):
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            name, k = t["name"], 0
            while name in taken:
                k += 1
                name = f"target {i}.{k}"
            t["name"] = name
            taken.add(name)


def _enabled_alerts(case):
    """Alerts: catalogue names, each once; enabled needs a webhook URL and
    an event name."""
    body = case.body
    if not isinstance(body, dict):
        return
    events = body.get("events")
    if isinstance(events, list):
        names = []
        for drawn in events:
            name = _catalogue_name(drawn, names)
            if name is not None:
                names.append(name)
        body["events"] = names
    if body.get("enabled") is True:
        body["webhook_url"] = _sink()
        if not body.get("events"):
            body["events"] = [_catalogue()[0]]


def _outbound(case):
    return case.method.upper() == "PUT" and (case.path.endswith("/forwarding") or case.path.endswith("/alerts"))


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """No forwarding or alerts body reaches the API with a URL other than
    the sink's that the server might accept: the run stops instead."""
    if not _outbound(case):
        return
    for container, key, _ in _url_slots(case.body):
        url = container[key]
        if isinstance(url, str) and url != _sink() and not _never_called(url):
            raise AssertionError(f"a generated URL would reach the API: {url!r}")


# The preview (POST .../forwarding/preview) runs drafts of the tracking plan
# and the destination filters over the workspace's newest stored events; it
# calls no URL. Its positive drafts keep the rules of the two PUTs (draft
# filters' names once; planned events named from the catalogue, the first the
# seeded events' own name, each with a schema built from a generated value),
# so a positive case is a draft the server takes and previews; and the first
# draft filter is enabled (a disabled one is kept but not applied, and
# enabled is off when left out), so most drafts have a condition to run. A
# negative case keeps its own fault, and one condition in three of its draft
# filters becomes one the server refuses (no CEL, not a bool, an event name
# outside the catalogue, an unknown variable; contract_test.go checks each is
# refused), so its 4xx paths run too.
_seeded_event = "Source Created"
_refused_conditions = ["event ==", "size(actor)", "event == 'Nothing Happened Here'", "unknown == 'x'",
                       "actor['id'] == 1 ||"]


def _is_preview(case):
    return case.method.upper() == "POST" and case.path.endswith("/forwarding/preview")


def _preview_drafts(case):
    """The positive drafts of a preview keep the PUTs' rules."""
    body = case.body
    if not isinstance(body, dict):
        return
    _planned_in(body.get("tracking_plan"), first=_seeded_event)
    drafts = body.get("destination_filters")
    _unique_names_in(drafts)
    filters = drafts.get("filters") if isinstance(drafts, dict) else None
    if isinstance(filters, list) and filters and isinstance(filters[0], dict):
        filters[0]["enabled"] = True


def _refused_drafts(case):
    """Some conditions of a negative preview's draft filters are refused ones."""
    drafts = case.body.get("destination_filters") if isinstance(case.body, dict) else None
    filters = drafts.get("filters") if isinstance(drafts, dict) else None
    for f in filters if isinstance(filters, list) else []:
        if isinstance(f, dict) and isinstance(f.get("if"), str):
            i = zlib.crc32(f["if"].encode("utf-8", "surrogatepass"))
            if i % 3 == 0:
                f["if"] = _refused_conditions[i // 3 % len(_refused_conditions)]


# Every 200 of the preview is summed up, one JSON object a line, in this
# file of Schemathesis's working directory, which the test reads after the
# run: it requires a preview whose draft filters matched some stored events
# and not others.
PREVIEWS = "previews.jsonl"


@schemathesis.hook
def after_call(ctx, case, response):
    """Records the preview's 200 answers (PREVIEWS)."""
    if not _is_preview(case) or response.status_code != 200:
        return
    try:
        answer = response.json()
    except ValueError:
        return  # not JSON: the checks report it
    if not isinstance(answer, dict):
        return
    body = case.body if isinstance(case.body, dict) else {}
    summary = {k: answer.get(k) for k in ("events", "kept", "dropped", "violations", "filter_errors")}
    summary["filters"] = [f.get("name") for f in answer.get("filters") or [] if isinstance(f, dict)]
    summary["draft_filters"] = isinstance(body.get("destination_filters"), dict)
    summary["draft_plan"] = isinstance(body.get("tracking_plan"), dict)
    with open(PREVIEWS, "a", encoding="utf-8") as f:
        f.write(json.dumps(summary) + "\n")


# Rules between values that no keyword of the document can state, each in
# its operation's description; the server answers a 400 naming the field
# when one is broken.
_rules = {
    ("PUT", "/destination-filters"): _unique_filter_names,
    ("PUT", "/tracking-plan"): _planned_events,
    ("PUT", "/forwarding"): _enabled_forwarding,
    ("PUT", "/alerts"): _enabled_alerts,
    ("POST", "/forwarding/preview"): _preview_drafts,
    ("GET", "/audit-events.ndjson"): _range_without_filters,
    ("GET", "/log/consistency"): _older_first,
}


@schemathesis.hook
def map_case(ctx, case):
    """Every case of the operations that call out aims at the sink; the
    positive cases keep the rules no keyword states (a negative case keeps
    its own fault)."""
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if _outbound(case):
        _to_sink(case, positive)
    if not positive:
        if _is_preview(case):
            _refused_drafts(case)
        return case
    for (method, suffix), rule in _rules.items():
        if case.method.upper() == method and case.path.endswith(suffix):
            rule(case)
    return case

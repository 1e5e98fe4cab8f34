"""Generators for the OpenAPI document's own string formats, loaded by
Schemathesis in the API contract test (scripts/e2e/contract_test.go).

A format names a language no JSON Schema keyword can state: the search
syntax of q. Schemathesis draws valid
values from these strategies; its negative cases break the other
keywords (type, maxLength, pattern), which the server refuses.
"""

import datetime

import schemathesis
from hypothesis import strategies as st

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

"""Runs SQL for internal/chdbtest on one chdb session (an in-process
ClickHouse) kept for the life of the process.

usage: python runner.py <session-dir>

The first line written is {"version": ..., "timezone": ...}. Then every line
read from stdin is one request, {"sql": "..."}, answered by one line:
{"meta": [[name, type], ...], "data": [[value, ...], ...]} or
{"error": "..."}. The process ends when stdin closes.
"""

import json
import os
import sys

# Answers go to a copy of stdout; anything the engine prints goes to stderr.
out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)

from chdb import session  # noqa: E402


def answer(obj):
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def run(s, sql):
    text = s.query(sql, "JSONCompact").bytes()
    if not text.strip():
        return {"meta": [], "data": []}
    res = json.loads(text)
    return {
        "meta": [[c["name"], c["type"]] for c in res.get("meta", [])],
        "data": res.get("data", []),
    }


def main():
    s = session.Session(sys.argv[1])
    try:
        hello = run(s, "SELECT version(), timezone()")["data"][0]
        answer({"version": hello[0], "timezone": hello[1]})
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                answer(run(s, json.loads(line)["sql"]))
            except Exception as e:  # the engine's error goes back to the test
                answer({"error": str(e)})
    finally:
        s.close()


main()

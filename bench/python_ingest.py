#!/usr/bin/env python3
"""The Python peer of flowrun's batch ingestion row: what scripts/steps/store_batch_results.lua
does, written the way a Python user would (urllib, json, sqlite3 `executemany`).

Usage: python_ingest.py API_URL API_KEY DATABASE CHUNK_ROWS

For every batch the database lists as `submitted`: GET its MessageBatch, stream its JSONL results
line by line, run the same idempotent upsert as the step's default `result_sql` with `executemany`
in transactions of CHUNK_ROWS rows, and mark the batch completed in the last one. Prints the rows
written.
"""
import json
import re
import sqlite3
import sys
import urllib.request

def step_sql(root):
    """(DEFAULT_SQL, COMPLETE) as the Lua step defines them (one source of truth)."""
    text = open(f"{root}/scripts/steps/store_batch_results.lua").read()
    found = dict(re.findall(r"local (DEFAULT_SQL|COMPLETE) = \[\[\n?(.*?)\]\]", text, re.S))
    return found["DEFAULT_SQL"], found["COMPLETE"]


def row_of(line, batch_id):
    result = line.get("result") or {}
    kind = result.get("type")
    row = {"custom_id": line.get("custom_id"), "batch_id": batch_id, "status": kind, "text": None, "error": None,
           "stop_reason": None, "input_tokens": None, "output_tokens": None}
    if kind == "succeeded":
        message = result.get("message") or {}
        row["text"] = "".join(b["text"] for b in message.get("content") or []
                              if b.get("type") == "text" and b.get("text") is not None)
        row["stop_reason"] = message.get("stop_reason")
        usage = message.get("usage") or {}
        row["input_tokens"] = usage.get("input_tokens")
        row["output_tokens"] = usage.get("output_tokens")
    elif kind == "errored":
        e = (result.get("error") or {}).get("error") or {}
        row["error"] = f"{e.get('type') or 'error'}: {e.get('message') or ''}"
    elif kind not in ("canceled", "expired"):
        raise ValueError(f"result of {row['custom_id']} has an unknown type: {kind}")
    if not isinstance(row["custom_id"], str):
        raise ValueError("a result line has no custom_id")
    return row


def main():
    api, key, database, chunk_rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    root = __file__.rsplit("/bench/", 1)[0]
    upsert, complete = step_sql(root)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    db = sqlite3.connect(database, isolation_level=None)
    total = 0
    ids = [r[0] for r in db.execute("SELECT id FROM batches WHERE status = 'submitted' ORDER BY submitted_at, id")]
    for batch_id in ids:
        with urllib.request.urlopen(urllib.request.Request(f"{api}/v1/messages/batches/{batch_id}",
                                                           headers=headers)) as r:
            batch = json.load(r)
        if batch["processing_status"] != "ended":
            continue
        counts = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        chunk = []

        def write(last):
            db.execute("BEGIN IMMEDIATE")
            if chunk:
                db.executemany(upsert, chunk)
            if last:
                db.execute(complete, {"id": batch_id, "counts": json.dumps(counts, sort_keys=True, separators=(",", ":"))})
            db.execute("COMMIT")
            chunk.clear()

        with urllib.request.urlopen(urllib.request.Request(batch["results_url"], headers=headers)) as r:
            for raw in r:
                if not raw.strip():
                    continue
                row = row_of(json.loads(raw), batch_id)
                counts[row["status"]] += 1
                chunk.append(row)
                if len(chunk) >= chunk_rows:
                    total += len(chunk)
                    write(False)
        total += len(chunk)
        write(True)
    db.close()
    print(total)


if __name__ == "__main__":
    main()

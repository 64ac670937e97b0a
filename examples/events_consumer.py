#!/usr/bin/python3
"""Follow agentmesh_lifecycle's audit events: LISTEN as a wake-up hint,
agentmesh.lm_events() as the durable, gap-free feed.

    python3 events_consumer.py "host=/var/run/postgresql dbname=appdb user=siem" cursor.txt

The login needs agentmesh_auditor (or agentmesh_admin).  Connect directly or
through a session-pooled pgbouncer: LISTEN needs a session of its own.

Delivery is at-least-once: the cursor is saved after the events are handled,
so after a crash the last batch may be handled again (make handle()
idempotent, e.g. keyed by event_id).  A notification is only a hint; the
loop also polls every POLL_SECONDS, so a lost or coalesced NOTIFY delays an
event by at most that long.  See docs/integrations.md#events.
"""
import json
import os
import select
import sys

import psycopg

POLL_SECONDS = 30
BATCH = 500


def load_cursor(path):
    try:
        with open(path) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def save_cursor(path, cursor):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cursor)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def handle(event):
    # replace with your sink (SIEM, queue, webhook); event_id makes it idempotent
    print(json.dumps({k: event[k] for k in
                      ("event_id", "occurred_at", "event_type", "agent_id", "agent_name",
                       "owner", "actor", "previous_state", "new_state", "reason")},
                     default=str), flush=True)


def drain(conn, cursor):
    """Read every committed event after cursor, in batches; return the new cursor."""
    while True:
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute("SELECT * FROM agentmesh.lm_events(%s, %s)", (cursor, BATCH))
            rows = cur.fetchall()
        for row in rows:
            handle(row)
            cursor = row["event_cursor"]
        if len(rows) < BATCH:
            return cursor


def main():
    dsn, cursor_file = sys.argv[1], sys.argv[2]
    cursor = load_cursor(cursor_file)
    # autocommit: each lm_events() call gets a fresh snapshot, so events
    # become visible as soon as every older transaction has ended
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN agentmesh_events")
        while True:
            new = drain(conn, cursor)
            if new != cursor:
                save_cursor(cursor_file, new)
                cursor = new
            # wait for a hint or the poll interval, whichever comes first;
            # the query reads any pending notification (its payload is empty)
            if select.select([conn.fileno()], [], [], POLL_SECONDS)[0]:
                conn.execute("SELECT 1")


if __name__ == "__main__":
    main()

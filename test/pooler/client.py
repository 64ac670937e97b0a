#!/usr/bin/python3
"""Drive agentmesh_lifecycle through a pooler with extended-protocol binds.

Used by test/t/042_pgbouncer.pl: every call sends its arguments as bind
parameters (psycopg 3 server-side binding) over connections pooled by
pgbouncer in transaction mode, and prepare_threshold=None keeps psycopg
from naming prepared statements (pgbouncer before 1.21 cannot route them).

    client.py DSN_ADMIN DSN_AGENT ROUNDS

Prints one line: "lifecycles N heartbeats N verifications N failures N".
"""
import sys

import psycopg

admin_dsn, agent_dsn, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
failures = 0
counts = {"lifecycles": 0, "heartbeats": 0, "verifications": 0}


def connect(dsn):
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


# several client connections share the pool's few server connections
admins = [connect(admin_dsn) for _ in range(3)]
agents = [connect(agent_dsn) for _ in range(3)]


def one(conn, sql, params):
    global failures
    try:
        row = conn.execute(sql, params).fetchone()
        return row
    except psycopg.Error as e:  # counted, and shown without the statement
        failures += 1
        print("failure: %s %s" % (e.sqlstate, type(e).__name__), file=sys.stderr)
        return None


for r in range(rounds):
    a = admins[r % len(admins)]
    row = one(a, "SELECT agent_id FROM agentmesh.lm_request(%s, %s, actor => %s)",
              ("pooled-%d" % r, "alice@example.com", "pooler-test"))
    if row is None:
        continue
    agent_id = row[0]
    one(admins[(r + 1) % 3], "SELECT state FROM agentmesh.lm_approve(%s, %s)", (agent_id, "approver"))
    row = one(admins[(r + 2) % 3], "SELECT token FROM agentmesh.lm_activate(%s)", (agent_id,))
    if row is None:
        continue
    token = row[0]
    for i in range(10):
        c = agents[(r + i) % len(agents)]
        row = one(c, "SELECT state FROM agentmesh.lm_heartbeat(%s, %s)", (agent_id, token))
        if row is not None:
            counts["heartbeats"] += 1
        row = one(c, "SELECT agentmesh.lm_verify_credential(%s)", (token,))
        if row is not None and row[0] == agent_id:
            counts["verifications"] += 1
        elif row is not None:
            failures += 1
    # a transaction with several statements stays on one server connection
    try:
        with a.transaction():
            a.execute("SELECT agentmesh.lm_suspend(%s, %s)", (agent_id, "pooled pause"))
            a.execute("SELECT agentmesh.lm_resume(%s)", (agent_id,))
    except psycopg.Error as e:
        failures += 1
        print("failure: %s" % e.sqlstate, file=sys.stderr)
    row = one(a, "SELECT token FROM agentmesh.lm_rotate_credentials(%s)", (agent_id,))
    if row is not None:
        row = one(agents[0], "SELECT agentmesh.lm_verify_credential(%s)", (row[0],))
        if row is None or row[0] != agent_id:
            failures += 1
    row = one(a, "SELECT state FROM agentmesh.lm_decommission(%s, %s)", (agent_id, "done"))
    if row is not None and row[0] == "decommissioned":
        counts["lifecycles"] += 1

print("lifecycles %d heartbeats %d verifications %d failures %d"
      % (counts["lifecycles"], counts["heartbeats"], counts["verifications"], failures))

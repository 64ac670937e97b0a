#!/usr/bin/env python3
"""Generate fuzz calls for every agentmesh.lm_* function (and policy DML).

Usage: gen.py COUNT SEED [FUNCTIONS]  > calls.tsv
FUNCTIONS is a comma-separated list of the lm_* functions the installed
extension has (others are skipped, e.g. before the worker's functions land).
Each output line is  kind <TAB> role <TAB> sql  (COPY text format), where kind
is the function (or 'policy') the call exercises and role is the role the call
runs as ('' = the superuser).  Arguments are SQL expressions, so that NULLs,
1 MB strings, invalid UTF-8 (convert_from) and huge jsonb are built inside the
server instead of being shipped as literals.  Python 3 standard library only.
"""
import random
import sys

# ---- argument pools (SQL expressions) ------------------------------------
TEXT = [
    "NULL", "''", "' '", "E'\\t\\n '", "'x'", "'alice@example.com'",
    "repeat('a', 100)", "repeat('a', 200)", "repeat('a', 201)",
    "repeat('a', 1000)", "repeat('a', 1001)", "repeat('é', 1000)",
    "repeat('x', 1048576)",                              # 1 MB
    "E'a\\x01b'", "E'tab\\there'", "E'nl\\nhere'", "E'del\\x7f'",
    "U&'\\202Eevil'", "U&'rl\\2066o'", "U&'zero\\200Bwidth'", "U&'\\FEFFbom'",
    "U&'\\+01F600 emoji'", "'日本語のエージェント'",
    "convert_from('\\xff'::bytea, 'UTF8')",             # invalid UTF-8: 22021
    "convert_from('\\xc3\\x28'::bytea, 'UTF8')",
    "''');DROP TABLE agentmesh.agents;--'", "'%s%n%x'", "'\\\\'", "'$1'",
    "'agent:'", "'agent:' || repeat('0', 32)", "'agent:' || repeat('f', 100)",
    "md5(random()::text)",
]
IDS = [
    # ids of agents in each state, picked at call time (states drift as the
    # fuzz runs, so these are also "ids in other states")
    "(SELECT agent_id FROM agentmesh.agents WHERE state = '%s' ORDER BY random() LIMIT 1)" % s
    for s in ("pending_approval", "provisioned", "active", "suspended",
              "orphaned", "decommissioned")
] + ["'agent:' || md5(random()::text)", "'agent:00000000000000000000000000000000'"]
TOKENS = [
    "(SELECT tok FROM fuzz_tokens ORDER BY random() LIMIT 1)",
    "overlay((SELECT tok FROM fuzz_tokens ORDER BY random() LIMIT 1) placing 'z' from 10)",
    "left((SELECT tok FROM fuzz_tokens ORDER BY random() LIMIT 1), 75)",
    "(SELECT tok FROM fuzz_tokens ORDER BY random() LIMIT 1) || 'a'",
    "upper((SELECT tok FROM fuzz_tokens ORDER BY random() LIMIT 1))",
    "'amk_' || repeat('0', 72)", "'amk_' || repeat('g', 72)",
]
JSONB = [
    "NULL", "'{}'", "'[]'", "'1'", "'\"s\"'", "'null'", "'{\"team\": \"x\"}'",
    "'{\"a\": 1}'", "'{\"a\": {\"b\": \"c\"}}'", "'{\"a\": [\"b\"]}'", "'{\"\": \"x\"}'",
    "'{\"a\": null}'", "'{\"a\": \"\\u0000\"}'",                   # 22P05
    "'{'", "'{\"a\": }'",                                        # 22P02
    "(SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 64) i)",
    "(SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 65) i)",
    "jsonb_build_object('big', repeat('x', 5000))",
    "jsonb_build_object('huge', repeat('x', 1048576))",
    "(repeat('[', 100) || repeat(']', 100))::jsonb",
    "(repeat('{\"a\":', 5000) || '1' || repeat('}', 5000))::jsonb",
    "(repeat('[', 100000) || repeat(']', 100000))::jsonb",      # 54001
    "jsonb_build_object(U&'\\202E', 'x')",
]
TS = [
    "NULL", "now()", "now() - interval '1 hour'", "now() + interval '1 hour'",
    "now() + interval '25 hours'", "now() + interval '100 days'",
    "now() + interval '200 years'", "'infinity'", "'-infinity'", "'epoch'",
    "'4713-01-01 00:00:00+00 BC'", "'294276-12-31 23:59:59+00'",
    "'2000-02-30'::timestamptz",                                 # 22008
    "'not a time'::timestamptz",                                 # 22007
    "now() + interval '290000 years'",                           # 22008
    "'2038-01-19 03:14:08+00'",
]
# allow_future: mostly true, so that later passes are exercised too
BOOLS = ["true", "true", "true", "false", "NULL"]
# audit tree sizes: absent, edges, the current size, beyond it
SIZES = ["NULL", "0", "1", "2", "-1", "7", "(SELECT tree_size FROM agentmesh.lm_audit_checkpoint())",
         "(SELECT tree_size + 1 FROM agentmesh.lm_audit_checkpoint())", "9223372036854775807"]
STATES = ["'%s'" % s for s in ("pending_approval", "provisioned", "active", "suspended",
                               "rotating_credentials", "decommissioning",
                               "decommissioned", "orphaned")] + [
    "NULL", "'bogus'", "''", "'ACTIVE'"]
INTERVALS = [
    "'0'", "'-1 day'", "'1 microsecond'", "'1 second'", "'5 minutes'", "'24 hours'",
    "'366 days'", "'367 days'", "'178000000 years'", "'1 day 1000000 hours'", "NULL", "'nonsense'",
]
POLICY_NAMES = ["'default'", "'p' || (random() * 20)::int", "'Bad Name'", "''", "NULL",
                "repeat('p', 64)", "U&'p\\202E'"]
ROLES = [""] * 10 + ["agentmesh_agent", "agentmesh_requester", "agentmesh_approver",
         "agentmesh_auditor", "agentmesh_admin"]


def pick(rng, pool):
    return rng.choice(pool)


def text(rng):
    return pick(rng, TEXT)


def agent(rng):
    return pick(rng, IDS) if rng.random() < 0.8 else text(rng)


def actor(rng):
    return pick(rng, ["NULL", "'fuzzer'", "'alice'"]) if rng.random() < 0.6 else text(rng)


# teams: existing roles, a missing one, NULL, a refused character (issue 10)
TEAMS = ["NULL", "'postgres'", "'agentmesh_requester'", "'pg_monitor'", "'no_such_role'",
         "''", "'a\u200bb'", "repeat('r', 64)"]


def call(fn, *args, from_clause=True):
    a = ", ".join(args)
    return "SELECT count(*) FROM agentmesh.%s(%s)" % (fn, a)


def policy_dml(rng):
    col, pool = rng.choice([
        ("heartbeat_interval", INTERVALS), ("orphan_threshold", INTERVALS),
        ("max_credential_ttl", INTERVALS), ("rotation_overlap", INTERVALS),
        ("max_inactive_days", ["0", "-1", "1", "36500", "36501", "2147483647", "NULL"]),
        ("require_approval", ["true", "false", "NULL"]),
        ("require_distinct_approver", ["true", "false"]),
        ("heartbeat_requires_token", ["true", "false"]),
        ("audit_heartbeats", ["true", "false"]),
        ("auto_rotate", ["true", "false"]),
        ("rotate_after", ["0", "-0.5", "0.5", "1", "1.5", "'NaN'", "'Infinity'", "1e-300", "NULL"]),
    ])
    val = pick(rng, pool)
    if rng.random() < 0.5:
        return "INSERT INTO agentmesh.policies (name, %s) VALUES (%s, %s)" % (
            col, pick(rng, POLICY_NAMES), val)
    return "UPDATE agentmesh.policies SET %s = %s WHERE name = %s" % (
        col, val, pick(rng, POLICY_NAMES))


GENERATORS = {
    "lm_request": (12, lambda r: call("lm_request", text(r), text(r) if r.random() < .5 else "'owner@example.com'",
                                      text(r) if r.random() < .3 else "''",
                                      text(r) if r.random() < .3 else "'autonomous'",
                                      actor(r), pick(r, JSONB) if r.random() < .5 else "'{}'",
                                      pick(r, POLICY_NAMES) if r.random() < .3 else "'default'",
                                      pick(r, TEAMS) if r.random() < .3 else "NULL")),
    "lm_approve": (8, lambda r: call("lm_approve", agent(r), actor(r))),
    "lm_reject": (3, lambda r: call("lm_reject", agent(r), text(r), actor(r))),
    "lm_activate": (8, lambda r: "INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_activate(%s, %s)" % (agent(r), actor(r))),
    "lm_heartbeat": (10, lambda r: call("lm_heartbeat", agent(r), pick(r, TOKENS) if r.random() < .5 else text(r))),
    "lm_suspend": (4, lambda r: call("lm_suspend", agent(r), text(r), actor(r))),
    "lm_resume": (4, lambda r: call("lm_resume", agent(r), actor(r))),
    "lm_decommission": (3, lambda r: call("lm_decommission", agent(r), text(r), actor(r))),
    "lm_change_owner": (4, lambda r: call("lm_change_owner", agent(r), text(r), actor(r))),
    "lm_change_team": (2, lambda r: call("lm_change_team", agent(r), pick(r, TEAMS) if r.random() < .7 else text(r), actor(r))),
    "lm_rotate_credentials": (6, lambda r: "INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_rotate_credentials(%s, %s)" % (agent(r), actor(r))),
    "lm_revoke_credentials": (3, lambda r: call("lm_revoke_credentials", agent(r), text(r), actor(r))),
    "lm_verify_credential": (8, lambda r: call("lm_verify_credential", pick(r, TOKENS) if r.random() < .6 else text(r))),
    "lm_renew": (4, lambda r: "INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_renew(%s)" % (pick(r, TOKENS) if r.random() < .7 else text(r))),
    "lm_claim_credential": (3, lambda r: "INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_claim_credential(%s)" % (pick(r, TOKENS) if r.random() < .7 else text(r))),
    "lm_check_and_rotate": (1, lambda r: call("lm_check_and_rotate", pick(r, TS), pick(r, BOOLS))),
    "lm_detect_orphans": (2, lambda r: call("lm_detect_orphans", pick(r, TS))),
    "lm_mark_orphaned": (4, lambda r: call("lm_mark_orphaned", agent(r), actor(r))),
    "lm_reclaim": (4, lambda r: "INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_reclaim(%s, %s, %s)" % (agent(r), text(r), actor(r))),
    "lm_get": (3, lambda r: call("lm_get", agent(r))),
    "lm_list_by_state": (2, lambda r: call("lm_list_by_state", pick(r, STATES))),
    "lm_list_by_owner": (2, lambda r: call("lm_list_by_owner", text(r))),
    "lm_audit_trail": (2, lambda r: call("lm_audit_trail", agent(r))),
    "lm_summary": (1, lambda r: call("lm_summary")),
    "lm_verify_audit": (1, lambda r: call("lm_verify_audit", agent(r) if r.random() < .8 else "NULL")),
    "lm_transitions": (1, lambda r: call("lm_transitions")),
    "lm_verify_audit_problems": (1, lambda r: call("lm_verify_audit_problems", agent(r) if r.random() < .8 else "NULL")),
    "lm_audit_checkpoint": (1, lambda r: call("lm_audit_checkpoint")),
    "lm_audit_consistency_proof": (1, lambda r: call("lm_audit_consistency_proof", pick(r, SIZES), pick(r, SIZES))),
    "lm_audit_inclusion_proof": (1, lambda r: call("lm_audit_inclusion_proof",
                                                   pick(r, ["NULL", "0", "1", "-1", "(SELECT max(event_id) FROM agentmesh.audit_events)",
                                                            "(SELECT min(event_id) FROM agentmesh.audit_events)", "9223372036854775807"]),
                                                   pick(r, SIZES))),
    "lm_run_maintenance": (1, lambda r: call("lm_run_maintenance", pick(r, TS),
                                             pick(r, ["NULL", "0", "-1", "1", "7", "100", "2147483647"]),
                                             pick(r, BOOLS))),
    "lm_worker_status": (1, lambda r: call("lm_worker_status")),
    "lm_events": (1, lambda r: call("lm_events",
                                    pick(r, ["NULL", "'0:0'", "'1:2'", "'18446744073709551615:9223372036854775807'",
                                             "'9999999999999999999:9999999999999999999'", "':'", "'1:'", "'-1:2'",
                                             "' 1:2'", "'1:2:3'"]) if r.random() < .7 else text(r),
                                    pick(r, ["NULL", "0", "-1", "1", "1000", "100000", "100001", "2147483647"]))),
    "policy": (3, policy_dml),
}


def main():
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    names = list(GENERATORS)
    if len(sys.argv) > 3:
        present = set(sys.argv[3].split(",")) | {"policy"}
        names = [n for n in names if n in present]
    weights = [GENERATORS[n][0] for n in names]
    out = sys.stdout
    # every function at least once, then weighted random
    order = names + rng.choices(names, weights, k=max(0, count - len(names)))
    for name in order:
        role = rng.choice(ROLES)
        sql = GENERATORS[name][1](rng)
        out.write("%s\t%s\t%s\n" % (name, role, sql.replace("\\", "\\\\")))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reference agent for agentmesh_lifecycle (docs/credentials.md#reference-agent).

What a real agent does with its identity, and nothing more:

  * reads its initial token from a file (--token-file) or from the
    environment (AGENTMESH_TOKEN), never from the command line, where any
    user could read it in the process list;
  * heartbeats with the token as a bind parameter (psycopg 3 sends the
    statement and its parameters separately, so the token is in neither the
    statement text nor a server log line);
  * claims the successor the maintenance pass sealed under its token, as
    soon as the heartbeat says one is waiting;
  * renews its credential itself before it expires;
  * keeps the token out of its own output: it logs credential ids only.

With --token-file the file is rewritten (mode 0600, atomically) with each
new token, so a restarted agent starts from the newest one.

Requires Debian's python3-psycopg (psycopg 3).  Connection settings come from
--dsn or the usual PG* environment variables; the login role needs only
agentmesh_agent.
"""

import argparse
import datetime
import os
import signal
import sys
import tempfile
import time

import psycopg
from psycopg import errors
from psycopg.rows import dict_row


def log(msg):
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"{ts} agent: {msg}", flush=True)


class Agent:
    def __init__(self, args):
        self.args = args
        self.agent_id = args.agent_id or os.environ.get("AGENTMESH_AGENT_ID")
        if not self.agent_id:
            sys.exit("agent id missing: --agent-id or AGENTMESH_AGENT_ID")
        self.token = self._read_token()
        self.credential_id = None   # of self.token, once known
        self.issued_at = None
        self.expires_at = None
        self.interval = args.interval
        self.conn = None
        self.beats = 0
        self.refused = 0
        self.stop = False

    # ---- the token -------------------------------------------------------

    def _read_token(self):
        if self.args.token_file:
            with open(self.args.token_file, encoding="ascii") as f:
                token = f.read().strip()
        else:
            token = os.environ.pop("AGENTMESH_TOKEN", "").strip()
        if not token:
            sys.exit("no token: --token-file or AGENTMESH_TOKEN")
        return token

    def _store_token(self, grant):
        self.token = grant["token"]
        self.credential_id = grant["credential_id"]
        self.issued_at = grant["credential_issued_at"]
        self.expires_at = grant["credential_expires_at"]
        if self.args.token_file:
            d = os.path.dirname(os.path.abspath(self.args.token_file))
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".token-")
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (self.token + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.args.token_file)

    # ---- the database ----------------------------------------------------

    def connect(self):
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.args.dsn or "", autocommit=True,
                                        row_factory=dict_row,
                                        application_name="agentmesh-reference-agent")

    def call(self, sql, params):
        self.connect()
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def claim(self, quiet=False):
        try:
            grant = self.call("SELECT * FROM agentmesh.lm_claim_credential(%s)", (self.token,))
        except errors.InsufficientPrivilege:
            if not quiet:
                log("no successor to claim")
            return False
        self._store_token(grant)
        log(f"claimed successor {grant['credential_id']}")
        return True

    def renew(self):
        try:
            grant = self.call("SELECT * FROM agentmesh.lm_renew(%s)", (self.token,))
        except errors.InsufficientPrivilege:
            log("renewal refused")
            return False
        self._store_token(grant)
        log(f"renewed: now {grant['credential_id']}")
        return True

    def heartbeat(self):
        row = self.call("SELECT * FROM agentmesh.lm_heartbeat(%s, %s)",
                        (self.agent_id, self.token))
        self.beats += 1
        # the policy's interval, when the result carries it (issue 10's
        # heartbeat_result); otherwise --interval
        nxt = row.get("next_heartbeat_before")
        last = row.get("last_heartbeat_at") or row.get("last_heartbeat")
        if self.args.interval is None and nxt and last:
            self.interval = max(0.2, (nxt - last).total_seconds())
        return row

    def successor_waiting(self, row):
        # heartbeat_result.successor_waiting: the pass rotated our credential
        # and sealed its successor under our token
        return bool(row.get("successor_waiting"))

    def renewal_due(self, row):
        # heartbeat_result.credential_expires_at: when the token we presented expires
        expires = row.get("credential_expires_at") or self.expires_at
        if expires is None:
            return False
        now = datetime.datetime.now(datetime.timezone.utc)
        left = (expires - now).total_seconds()
        life = ((expires - self.issued_at).total_seconds()
                if self.issued_at else left)
        return left < max(2 * (self.interval or 1), 0.2 * life)

    # ---- the loop --------------------------------------------------------

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stop", True))
        deadline = time.monotonic() + self.args.duration if self.args.duration else None
        log(f"starting as {self.agent_id}")
        # a successor may have been sealed while the agent was not running
        self.claim(quiet=True)
        while not self.stop and (deadline is None or time.monotonic() < deadline):
            started = time.monotonic()
            try:
                row = self.heartbeat()
                log(f"heartbeat ok ({self.beats})")
                if self.successor_waiting(row):
                    self.claim()
                elif self.renewal_due(row):
                    self.renew()
            except errors.InsufficientPrivilege:
                self.refused += 1
                log("heartbeat refused")
            except psycopg.OperationalError as e:
                log(f"connection problem: {type(e).__name__}; reconnecting")
                self.conn = None
            except psycopg.Error as e:
                log(f"error {e.sqlstate}: {type(e).__name__}")
            time.sleep(max(0.0, (self.interval or 60) - (time.monotonic() - started)))
        log(f"stopped after {self.beats} heartbeats, {self.refused} refused")
        return 0 if self.refused == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", help="libpq connection string (default: PG* variables)")
    p.add_argument("--agent-id", help="the agent id (or AGENTMESH_AGENT_ID)")
    p.add_argument("--token-file", help="file holding the token (rewritten on renewal)")
    p.add_argument("--interval", type=float,
                   help="seconds between heartbeats (default: the policy's, from the heartbeat)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    args = p.parse_args()
    sys.exit(Agent(args).run())


if __name__ == "__main__":
    main()

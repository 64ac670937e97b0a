/*-------------------------------------------------------------------------
 *
 * renewal.c
 *		The agent's own credential operations: lm_renew(token), self-renewal,
 *		and lm_claim_credential(token), which returns the successor the
 *		maintenance pass sealed under the presented token.
 *
 * Both authenticate by the token alone and refuse with one 42501 message
 * whatever is wrong (malformed, unknown, expired, revoked, superseded past
 * its overlap, an agent that is not active, nothing to claim), so that a
 * refused call learns nothing about the token, the agent or its state.  A
 * refusal changes nothing.  Each is one transaction step: the agent row is
 * locked first, the token checked again in a snapshot taken after the lock
 * (a revocation that committed meanwhile is seen), then credential rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

typedef enum AmSelfOp
{
	SELF_RENEW,
	SELF_CLAIM
} AmSelfOp;

pg_noreturn static void
refused(AmSelfOp op)
{
	if (op == SELF_RENEW)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("renewal refused: no live credential of an active agent was presented"),
				 errhint("Renew with the agent's current token, passed as a bind parameter, before it expires.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("claim refused: no successor is waiting for the presented credential"),
			 errhint("Claim with the token the successor was sealed under, once the heartbeat reports that one is waiting.")));
}

static AmPlan lock_plan = {
	"SELECT state::text, policy, credential_id FROM agentmesh.agents"
	" WHERE agent_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

static AmPlan renew_apply_plan = {
	"UPDATE agentmesh.agents SET credential_id = $2, credential_issued_at = $3,"
	" credential_expires_at = $4 WHERE agent_id = $1 RETURNING state::text",
	4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/*
 * Authenticate: the token (argument 0) is live, its agent's row is locked
 * (inside am_connect) and the agent is active; else refused.  *info
 * describes the token as seen after the lock; *current is the agent's
 * current credential id.
 */
static void
authenticate(FunctionCallInfo fcinfo, AmSelfOp op, char **token_out, AmTokenInfo *info,
			 char **policy, char **current)
{
	text	   *t;
	char	   *token;
	AmTokenInfo first;
	Datum		arg;
	bool		ok;
	char	   *state;

	if (PG_ARGISNULL(0))
		refused(op);
	t = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(t) != AM_TOKEN_LEN)
		refused(op);
	token = text_to_cstring(t);
	if (!am_token_lookup(token, GetCurrentTimestamp(), &first))
		refused(op);

	arg = CStringGetTextDatum(first.agent_id);
	am_exec(&lock_plan, &arg, NULL, false, 1);
	if (SPI_processed != 1)
		refused(op);
	state = am_getcol_text(1);
	*policy = am_getcol_text(2);
	*current = am_getcol_text(3);

	/* again, in a snapshot taken after the lock, against the wall clock */
	PushActiveSnapshot(GetTransactionSnapshot());
	ok = am_token_lookup(token, GetCurrentTimestamp(), info) &&
		strcmp(info->agent_id, first.agent_id) == 0;
	PopActiveSnapshot();
	if (!ok || am_state_from_name(state) != AM_ACTIVE)
		refused(op);
	*token_out = token;
}

/*
 * lm_renew(token): the successor of the presented credential, issued as a
 * rotation issues it (the presented token stays valid for the overlap, any
 * older one ends now), audited as credential_rotated by the agent itself.
 */
PG_FUNCTION_INFO_V1(lm_renew);
Datum
lm_renew(PG_FUNCTION_ARGS)
{
	char	   *token;
	AmTokenInfo info;
	char	   *policy;
	char	   *current;
	AmPolicy	pol;
	AmGrant		grant;
	AmPriv		priv;
	Datum		v[4];
	const char *k[4] = {"old_credential", "new_credential", "self_renewed", "presented_credential"};
	const char *d[4];
	char	   *agent_id;

	am_require_writable("lm_renew()");
	am_connect(&priv);
	authenticate(fcinfo, SELF_RENEW, &token, &info, &policy, &current);
	explicit_bzero(token, AM_TOKEN_LEN);
	agent_id = MemoryContextStrdup(TopTransactionContext, info.agent_id);
	if (!am_load_policy(policy, &pol))
		elog(ERROR, "policy of agent \"%s\" is missing", agent_id);

	am_track_use(&info, GetCurrentTimestamp(), true);
	am_issue_credential(agent_id, &pol.max_credential_ttl, &pol.rotation_overlap,
						GetCurrentTransactionStartTimestamp(), &grant);

	d[0] = current;
	d[1] = grant.credential_id;
	d[2] = "true";
	d[3] = info.credential_id;
	v[0] = CStringGetTextDatum(agent_id);
	v[1] = CStringGetTextDatum(grant.credential_id);
	v[2] = TimestampTzGetDatum(grant.issued_at);
	v[3] = TimestampTzGetDatum(grant.expires_at);
	/* the agents trigger checks the transition and writes the event */
	am_set_audit_context(AM_OP_ROTATE, agent_id, am_jsonb_build(4, k, d));
	am_exec(&renew_apply_plan, v, NULL, false, 0);
	am_clear_audit_context();
	if (SPI_processed != 1)
		elog(ERROR, "agent \"%s\" vanished while locked", agent_id);
	am_finish(&priv);
	PG_RETURN_DATUM(am_grant_result(fcinfo, agent_id, AM_ACTIVE, &grant));
}

/*
 * lm_claim_credential(token): the successor sealed under the presented
 * token, exactly once.
 */
PG_FUNCTION_INFO_V1(lm_claim_credential);
Datum
lm_claim_credential(PG_FUNCTION_ARGS)
{
	char	   *token;
	AmTokenInfo info;
	char	   *policy;
	char	   *current;
	AmGrant		grant;
	AmPriv		priv;
	char	   *agent_id;
	bool		ok;
	TimestampTz now;

	am_require_writable("lm_claim_credential()");
	am_connect(&priv);
	authenticate(fcinfo, SELF_CLAIM, &token, &info, &policy, &current);
	agent_id = MemoryContextStrdup(TopTransactionContext, info.agent_id);
	now = GetCurrentTimestamp();
	am_track_use(&info, now, true);
	ok = am_claim_successor(agent_id, info.credential_id, token, now, &grant);
	explicit_bzero(token, AM_TOKEN_LEN);
	if (!ok)
		refused(SELF_CLAIM);
	am_finish(&priv);
	PG_RETURN_DATUM(am_grant_result(fcinfo, agent_id, AM_ACTIVE, &grant));
}

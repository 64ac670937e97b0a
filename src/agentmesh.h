/*-------------------------------------------------------------------------
 *
 * agentmesh.h
 *		Declarations shared by the agentmesh_lifecycle modules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENTMESH_H
#define AGENTMESH_H

#include "postgres.h"

#include "compat.h"

#include "executor/spi.h"
#include "nodes/execnodes.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* ---- agentmesh_lifecycle.c: GUCs ---- */
extern int	am_naptime;
extern bool am_enabled;
extern int	am_batch_size;
extern char *am_databases;
extern bool am_allow_drop;
extern int	am_revocation_wait;	/* ms; revocation.c */

#define AM_SCHEMA			"agentmesh"
#define AM_MAINT_ACTOR		"agentmesh-maintenance"

/* Documented input limits (docs/errors.md, "Limits"). */
#define AM_MAX_NAME_LEN		200
#define AM_MAX_TEXT_LEN		1000	/* owner, purpose, agent_type, actor, reason */
#define AM_MAX_ID_LEN		100
#define AM_MAX_TAGS_BYTES	4096
#define AM_MAX_TAGS_KEYS	64

/* Every credential token starts with this (credentials.c). */
#define AM_TOKEN_PREFIX		"amk_"

/* ---- validate.c: arguments, limits, audit details ---- */

extern char *am_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname,
						 bool required, int maxlen, bool allow_empty);
extern char *am_actor(FunctionCallInfo fcinfo, int argno);
extern char *am_agent_id_arg(FunctionCallInfo fcinfo);
extern char *am_agent_id_arg_opt(FunctionCallInfo fcinfo, bool required);
extern Jsonb *am_tags_arg(FunctionCallInfo fcinfo, int argno);
extern Jsonb *am_jsonb_build(int npairs, const char *const *keys, const char *const *vals);
extern Jsonb *am_details1(const char *k, const char *v);
extern Jsonb *am_details2(const char *k1, const char *v1, const char *k2, const char *v2);
extern char *am_log_quote(const char *s);

/* How far past the wall clock a maintenance as_of may lie without allow_future. */
#define AM_AS_OF_MAX_FUTURE_MS	(5 * 60 * 1000)
extern TimestampTz am_as_of_arg(FunctionCallInfo fcinfo, int argno, int allow_future_argno);

/* ---- state_machine.c ---- */

/* Lifecycle states, in the enum's order. */
typedef enum AmState
{
	AM_PENDING_APPROVAL = 0,
	AM_PROVISIONED,
	AM_ACTIVE,
	AM_SUSPENDED,
	AM_ROTATING_CREDENTIALS,
	AM_DECOMMISSIONING,
	AM_DECOMMISSIONED,
	AM_ORPHANED,
	AM_NUM_STATES
} AmState;

#define AM_STATE_NONE	(-1)	/* no state: before request; "unchanged" as target */

/* Event types, in the enum's order. */
typedef enum AmEvent
{
	AM_EV_NONE = -1,
	AM_EV_REQUESTED = 0,
	AM_EV_APPROVED,
	AM_EV_REJECTED,
	AM_EV_PROVISIONED,
	AM_EV_ACTIVATED,
	AM_EV_CREDENTIAL_ROTATED,
	AM_EV_CREDENTIAL_EXPIRED,
	AM_EV_HEARTBEAT,
	AM_EV_HEARTBEAT_MISSED,
	AM_EV_SUSPENDED,
	AM_EV_RESUMED,
	AM_EV_ORPHAN_DETECTED,
	AM_EV_DECOMMISSION_STARTED,
	AM_EV_DECOMMISSIONED,
	AM_EV_OWNER_CHANGED,
	AM_EV_CREDENTIAL_REVOKED,
	AM_EV_ATTRIBUTES_CHANGED,
	AM_EV_POLICY_CHANGED,
	AM_EV_TEAM_CHANGED,			/* 1.1, issue 10 */
	AM_NUM_EVENTS
} AmEvent;

/* Operations; each has exactly one entry in the transition table. */
typedef enum AmOp
{
	AM_OP_REQUEST = 0,
	AM_OP_REQUEST_UNAPPROVED,	/* request under a policy without approval */
	AM_OP_APPROVE,
	AM_OP_REJECT,
	AM_OP_ACTIVATE,
	AM_OP_SUSPEND,
	AM_OP_RESUME,
	AM_OP_MARK_ORPHANED,
	AM_OP_RECLAIM,
	AM_OP_DECOMMISSION,
	AM_OP_HEARTBEAT,
	AM_OP_CHANGE_OWNER,
	AM_OP_ROTATE,
	AM_OP_REVOKE,
	AM_OP_EXPIRE,				/* maintenance records an expired credential */
	AM_OP_HEARTBEAT_MISSED,		/* maintenance records a missed heartbeat */
	AM_OP_UPDATE,				/* plain-SQL change of descriptive columns */
	AM_OP_CHANGE_TEAM,			/* 1.1, issue 10 */
	AM_NUM_OPS
} AmOp;

#define AM_MAX_OP_EVENTS 2

typedef struct AmTransition
{
	AmOp		op;
	const char *name;			/* operation name as users see it */
	uint32		from_mask;		/* bit per AmState the operation accepts */
	int			to;				/* AmState, or AM_STATE_NONE: state unchanged */
	AmEvent		events[AM_MAX_OP_EVENTS];	/* AM_EV_NONE-terminated */
	bool		sql_inferable;	/* may a plain UPDATE of state mean this op? */
} AmTransition;

extern const char *const am_state_names[AM_NUM_STATES];
extern const char *const am_event_names[AM_NUM_EVENTS];

extern const AmTransition *am_transition(AmOp op);
extern const AmTransition *am_transition_for_states(AmState from, AmState to);
extern bool am_op_allowed(AmOp op, AmState from);
extern AmState am_state_from_name(const char *name);
extern AmState am_state_from_datum(Datum enumval);
pg_noreturn extern void am_report_wrong_state(AmOp op, const char *agent_id, AmState from);

/* ---- spi_util.c ---- */

typedef struct AmPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	SPIPlanPtr	plan;
} AmPlan;

typedef struct AmPriv
{
	Oid			saved_uid;
	int			saved_secctx;
	int			search_path_level;	/* am_push_catalog_search_path()'s */
} AmPriv;

extern Oid	am_extension_owner(void);
extern Oid	am_relid(Oid nsp, const char *relname);
extern void am_require_writable(const char *funcname);
extern bool am_schema_is_1_1(void);
extern int	am_attnum(TupleDesc desc, const char *name);
extern Datum am_col(HeapTuple tup, TupleDesc desc, const char *name, bool *isnull);
extern void am_connect(AmPriv *priv);
extern void am_finish(AmPriv *priv);
extern SPIPlanPtr am_prepare(AmPlan *p);
extern int	am_exec(AmPlan *p, const Datum *values, const bool *isnull, bool read_only, long count);
extern void am_put_composite_rows(ReturnSetInfo *rsinfo);
extern bytea *am_bytea(const uint8 *data, int len);
extern Oid	am_type_oid(const char *typname);
extern Datum am_text_datum(const char *s);
extern char *am_getcol_text(int col);
extern Datum am_getcol(int col, bool *isnull);

/* ---- agent_row.c: one agent row updated without the planner ---- */

typedef struct AmAgentRow
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
	TupleTableSlot *slot;		/* the locked row version */
} AmAgentRow;

extern bool am_agent_row_lock(AmAgentRow *row, const char *agent_id);
extern Datum am_agent_row_col(AmAgentRow *row, const char *name, bool *isnull);
extern bool am_agent_row_heartbeat(AmAgentRow *row, TimestampTz *at, Datum *row_out);
extern void am_agent_row_close(AmAgentRow *row);

/* ---- merkle.c: RFC 6962 Merkle tree over sealed events (issue 11) ---- */

#define AM_HASH_LEN 32
#define AM_MERKLE_LEVELS 64		/* a tree of at most 2^63 leaves */
#define AM_MERKLE_MAX_PROOF 130	/* longest inclusion or consistency proof */

/* the stored complete subtree (level, index) into out (32 bytes), or ERROR */
typedef void (*AmMerkleGetNode) (void *arg, int level, int64 index, uint8 *out);
/* a newly completed subtree, to be stored */
typedef void (*AmMerkleEmit) (void *arg, int level, int64 index, const uint8 *hash);

typedef struct AmMerkleFrontier
{
	int64		size;			/* leaves so far */
	uint8		nodes[AM_MERKLE_LEVELS][AM_HASH_LEN];	/* valid where size has the bit */
} AmMerkleFrontier;

extern void am_merkle_leaf_hash(const uint8 *data, size_t len, uint8 *out);
extern void am_merkle_node_hash(const uint8 *left, const uint8 *right, uint8 *out);
extern void am_merkle_range_hash(AmMerkleGetNode get, void *arg, int64 a, int64 b, uint8 *out);
extern void am_merkle_root(AmMerkleGetNode get, void *arg, int64 n, uint8 *out);
extern int	am_merkle_inclusion_proof(AmMerkleGetNode get, void *arg, int64 m, int64 n,
									  uint8 (*out)[AM_HASH_LEN]);
extern int	am_merkle_consistency_proof(AmMerkleGetNode get, void *arg, int64 m, int64 n,
										uint8 (*out)[AM_HASH_LEN]);
extern void am_merkle_append(AmMerkleFrontier *f, const uint8 *leaf_hash, AmMerkleEmit emit, void *arg);
extern void am_merkle_frontier_root(const AmMerkleFrontier *f, uint8 *out);
extern void am_merkle_frontier_load(AmMerkleFrontier *f, int64 size, AmMerkleGetNode get, void *arg);

/* ---- seals.c ---- */

extern int	am_write_seal(void);

/* ---- audit verification: one report per problem (issue 11) ---- */

/* class, subject ("agent <id>", "policy <name>", "seal <id>", ...), first broken event or -1, detail */
typedef void (*AmProblemFn) (void *arg, const char *problem_class, const char *subject,
							 int64 first_event, const char *detail);
extern int64 am_verify_seals(AmProblemFn report, void *arg);

/* ---- audit.c ---- */

/* What the calling lm_* function tells the agents trigger. */
typedef struct AmAuditContext
{
	bool		active;
	AmOp		op;
	const char *actor;
	Jsonb	   *details;
	bool		audit_heartbeat;
} AmAuditContext;

extern void am_set_audit_context(AmOp op, const char *actor, Jsonb *details);
extern void am_set_audit_heartbeat(bool on);
extern void am_clear_audit_context(void);
extern void am_register_xact_callbacks(void);

/* ---- credentials.c ---- */

typedef struct AmGrant
{
	char	   *credential_id;
	char	   *token;
	TimestampTz issued_at;
	TimestampTz expires_at;
} AmGrant;

extern void am_issue_credential(const char *agent_id, Interval *ttl, Interval *overlap,
								TimestampTz now, AmGrant *grant);
extern int	am_revoke_all_credentials(const char *agent_id, const char *reason, TimestampTz now);
extern char *am_random_id(const char *prefix, int nbytes);
extern bool am_token_hash(const char *token, uint8 *hash_out);
extern char *am_token_agent(const char *token, TimestampTz as_of, bool require_active);
extern Datum am_grant_result(FunctionCallInfo fcinfo, const char *agent_id, AmState state,
							 const AmGrant *g);

/* ---- credentials that reach their agents (issue 12): handover.c, credentials.c ---- */

#define AM_TOKEN_LEN			76	/* "amk_" + 64 hex + 8 hex CRC-32C */
#define AM_HANDOVER_SEALED_LEN	(AM_TOKEN_LEN + 32)	/* ciphertext + HMAC tag */
/* a credential's last_used_at is written at most once per this many seconds */
#define AM_LAST_USED_INTERVAL_SECS 60

extern void am_handover_seal(const char *pred_token, const char *agent_id, const char *pred_id,
							 const char *succ_id, const char *succ_token, uint8 *out);
extern bool am_handover_open(const char *pred_token, const char *agent_id, const char *pred_id,
							 const char *succ_id, const uint8 *sealed, size_t sealed_len,
							 char *succ_out);

/* What a live token is, found through the token_hash index (credentials.c). */
typedef struct AmTokenInfo
{
	char	   *agent_id;
	char	   *credential_id;
	TimestampTz issued_at;
	TimestampTz expires_at;		/* when this token stops verifying, as stored now */
	bool		last_used_null;
	TimestampTz last_used_at;
	bool		trackable;		/* false on the 1.0 schema: no last_used_at */
} AmTokenInfo;

/*
 * For the heartbeat (issue 10's heartbeat_result): whether a sealed
 * successor of the credential a token names waits for
 * lm_claim_credential(token).  Call after the token verified; false when
 * the token is not live at as_of.
 */
typedef struct AmTokenStatus
{
	char	   *credential_id;	/* the presented token's credential */
	TimestampTz expires_at;		/* when the presented token stops verifying */
	bool		successor_waiting;
	char	   *successor_id;	/* NULL unless successor_waiting */
} AmTokenStatus;

/* A use a verification queued for the maintenance pass (last_used.c). */
#define AM_USE_ID_LEN 48
typedef struct AmUse
{
	char		credential_id[AM_USE_ID_LEN];
	char		agent_id[AM_USE_ID_LEN];
	TimestampTz at;
	TimestampTz issued_at;		/* of the credential (for its first use) */
	bool		first;			/* no use recorded before */
} AmUse;

extern void am_last_used_init(void);
extern bool am_queue_use(const AmUse *use);
extern AmUse *am_take_uses(int *n);
extern int	am_flush_uses(void);

extern bool am_token_lookup(const char *token, TimestampTz as_of, AmTokenInfo *info);
extern char *am_token_agent_status(const char *token, TimestampTz as_of, AmTokenStatus *st);
extern void am_track_use(const AmTokenInfo *info, TimestampTz now, bool agent_row);
extern void am_set_handover_rotation(bool on);
extern bool am_claim_successor(const char *agent_id, const char *pred_id, const char *pred_token,
							   TimestampTz now, AmGrant *grant);

/* ---- policy ---- */

/* Who may use a policy and approve under it (read when needed, not cached). */
typedef struct AmPolicyAccess
{
	bool		has_allowed_roles;
	Datum		allowed_roles;	/* name[], when has_allowed_roles */
	char	   *approver_role;	/* NULL: admins and agentmesh_approver members */
} AmPolicyAccess;

typedef struct AmPolicy
{
	bool		require_approval;
	bool		require_owner;
	bool		require_distinct_approver;
	bool		revoke_on_decommission;
	bool		heartbeat_requires_token;
	bool		audit_heartbeats;
	bool		auto_rotate;
	Interval	max_credential_ttl;
	Interval	rotation_overlap;
	Interval	heartbeat_interval;
} AmPolicy;

/*
 * The settings (rotate_after of 1.1 last), then the access columns
 * (allowed_roles, approver_role, nullable); the policies trigger records a
 * change of any of them.
 */
#define AM_NUM_POLICY_SETTINGS 14
#define AM_NUM_POLICY_COLUMNS 16
extern const char *const am_policy_columns[AM_NUM_POLICY_COLUMNS];

extern bool am_load_policy(const char *name, AmPolicy *pol);
extern bool am_load_policy_access(const char *name, AmPolicyAccess *acc);
extern void am_validate_policy(HeapTuple tup, TupleDesc desc, const char *name);
extern void am_policy_cache_init(void);
extern void am_policy_changed(Oid policies_relid);

/* ---- revocation.c: revocation wins (issue 10) ---- */

/*
 * Before the agent row is locked for op: for an administrator's revoke,
 * suspend or decommission, take the row within revocation_wait,
 * terminating the non-administrator sessions that hold it longer (55P03 if
 * an administrator's does).  A no-op for other operations and callers.
 */
extern void am_revocation_lock(AmOp op, const char *agent_id);

/* ---- authz.c: who may do what on which agent (issue 10) ---- */

/* Members of this role (superusers are members of every role) are admins. */
#define AM_ADMIN_ROLE "agentmesh_admin"

/* The session user's standing, looked up once per call. */
typedef struct AmCaller
{
	Oid			user;			/* GetSessionUserId() */
	bool		admin;			/* member of agentmesh_admin (superusers are) */
	bool		approver;
	bool		auditor;
	bool		requester;
	bool		sees_all;		/* admin, approver or auditor */
} AmCaller;

/* What an operation needs of the caller on the agent (am_op_need). */
typedef enum AmNeed
{
	AM_NEED_MANAGE,				/* an admin, or a requester of the agent's team */
	AM_NEED_APPROVE,			/* a member of the policy's approver_role (am_may_approve) */
	AM_NEED_ADMIN				/* an admin */
} AmNeed;

extern AmNeed am_op_need(AmOp op);
extern void am_require_op(const AmCaller *c, AmNeed need, const char *opname,
						  const char *agent_id, const char *team);
extern bool am_member_of(Oid user, const char *role);
extern void am_caller(AmCaller *c);
extern char *am_caller_name(const AmCaller *c);
extern bool am_may_see(const AmCaller *c, const char *team);
extern bool am_may_manage(const AmCaller *c, const char *team);
extern void am_require_admin(const AmCaller *c, const char *funcname);
extern char *am_resolve_team(const AmCaller *c, const char *team);
extern char *am_existing_role(const char *team);
extern void am_check_policy_use(const AmCaller *c, const AmPolicyAccess *acc,
								bool require_approval);
extern bool am_may_approve(const AmCaller *c, const AmPolicyAccess *acc);

/* ---- lifecycle.c ---- */

extern Datum am_transition_agent(AmOp op, const char *agent_id, const char *actor, Jsonb *details);
extern Datum am_issue_and_apply(AmOp op, const char *agent_id, const char *actor,
								const char *new_owner, TimestampTz now, AmGrant *grant,
								AmState *state_out);

/* ---- orphans.c: shared with the maintenance pass ---- */

/*
 * Detection rules as SQL predicates over agent "a" and its policy "p" as of
 * $1, written once: lm_detect_orphans() reports them, the maintenance pass
 * selects its candidates and re-checks them under the row lock with them.
 */
#define AM_SILENT_HIT \
	"(a.state = 'active' AND a.last_heartbeat IS NOT NULL" \
	" AND $1 - a.last_heartbeat > p.orphan_threshold)"
#define AM_NEVER_HIT \
	"(a.state = 'active' AND a.last_heartbeat IS NULL" \
	" AND $1 - COALESCE(a.activated_at, a.created_at) > p.orphan_threshold)"
#define AM_NO_OWNER_HIT \
	"(a.owner IS NULL AND a.state <> 'pending_approval')"
/*
 * The last sign of life: heartbeat, administrative change, or (1.1) use of
 * a credential.  The _10 forms serve a database still on the 1.0 schema
 * (before ALTER EXTENSION UPDATE), which the library must keep running.
 */
#define AM_LAST_ACTIVITY "GREATEST(a.last_heartbeat, a.updated_at, a.last_used_at)"
#define AM_LAST_ACTIVITY_10 "GREATEST(a.last_heartbeat, a.updated_at)"
#define AM_INACTIVE_HIT_AT(act) \
	"($1 - " act " > make_interval(days => p.max_inactive_days))"
#define AM_INACTIVE_HIT AM_INACTIVE_HIT_AT(AM_LAST_ACTIVITY)

/* the reasons the maintenance pass acts on for an active agent */
#define AM_ORPHAN_HIT \
	"(a.state = 'active' AND (" AM_SILENT_HIT " OR " AM_NEVER_HIT " OR " AM_NO_OWNER_HIT "))"
/*
 * Active agents whose credential am_rotate_if_needed() may act on: none
 * issued, past rotate_after of its lifetime, inside the rotation window or
 * expired (auto_rotate on), or expired (auto_rotate off; whether that is
 * already recorded is decided under the lock).  A superset of what is
 * acted on.
 */
#define AM_ROTATE_DUE(as_of) \
	"(a.credential_issued_at + (a.credential_expires_at - a.credential_issued_at) * p.rotate_after <= " as_of ")"
#define AM_ROTATION_HIT_AT(due) \
	"(a.state = 'active'" \
	" AND (a.credential_id IS NULL OR a.credential_expires_at IS NULL" \
	"      OR (p.auto_rotate AND a.credential_expires_at - p.rotation_overlap <= $1)" \
	"      OR (p.auto_rotate AND " due ")" \
	"      OR (NOT p.auto_rotate AND a.credential_expires_at <= $1)))"
#define AM_ROTATION_HIT AM_ROTATION_HIT_AT(AM_ROTATE_DUE("$1"))
#define AM_ROTATION_HIT_10 AM_ROTATION_HIT_AT("false")

typedef enum AmRotateAction
{
	AM_RA_SKIPPED,				/* locked by someone else, or no longer active */
	AM_RA_ISSUED,
	AM_RA_ROTATED,
	AM_RA_EXPIRED,				/* expiry recorded now */
	AM_RA_OK,
	AM_RA_EXPIRED_BEFORE		/* expired, recorded by an earlier pass */
} AmRotateAction;

extern AmRotateAction am_rotate_if_needed(const char *agent_id, TimestampTz as_of,
										  char **detail);
extern AmPlan am_orphan_batch_plan;	/* $1 as_of, $2 text[] of candidates */

/* ---- maintenance.c ---- */

/* Counts of one maintenance pass, in the order of lm_run_maintenance()'s columns. */
typedef enum AmCount
{
	AM_CNT_ORPHANED = 0,
	AM_CNT_DECOMMISSIONED,
	AM_CNT_HEARTBEATS_MISSED,
	AM_CNT_ROTATED,
	AM_CNT_ISSUED,
	AM_CNT_EXPIRED,
	AM_CNT_SEALS,
	AM_NUM_COUNTS
} AmCount;

extern const char *const am_count_names[AM_NUM_COUNTS];

/* A pass in progress; survives the worker's per-batch commits. */
/* phases with candidate lists: orphans, auto_decommission, missed heartbeats, credentials */
#define AM_CAND_PHASES 4

typedef struct AmPass
{
	TimestampTz as_of;
	int			batch_size;
	int			phase;			/* AmPhase in maintenance.c */
	MemoryContext ctx;			/* holds the candidate lists for the pass */
	bool		found;			/* candidates collected? */
	char	  **cand[AM_CAND_PHASES];	/* agent ids per phase, scan order */
	int			ncand[AM_CAND_PHASES];
	int			pos;			/* next candidate of the current phase */
	int64		counts[AM_NUM_COUNTS];
} AmPass;

extern void am_pass_init(AmPass *pass, TimestampTz as_of, int batch_size, MemoryContext ctx);
extern bool am_pass_step(AmPass *pass);
extern const char *am_pass_phase_name(const AmPass *pass);

/* ---- events.c: the NOTIFY hint (issue 13) ---- */

#define AM_EVENTS_CHANNEL	"agentmesh_events"
extern bool am_notify;
extern void am_events_init(void);
extern void am_notify_event(void);

/* ---- worker.c ---- */

extern void am_worker_init(void);

#endif							/* AGENTMESH_H */

/*-------------------------------------------------------------------------
 *
 * validate.c
 *		Argument checking against the documented limits, and the jsonb
 *		details of audit events.
 *
 * The lowest layer: every operation, the audit triggers and the
 * maintenance pass use it, and it calls nothing of the extension's own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "agentmesh.h"

/* ----------------------------------------------------------------
 * Argument checking
 * ----------------------------------------------------------------
 */
static bool
has_forbidden_chars(const char *s, bool multiline)
{
	const unsigned char *p;

	for (p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
		{
			if (multiline && (*p == '\n' || *p == '\t'))
				continue;
			return true;
		}
		/* Unicode bidi embedding/override/isolate controls, which disguise text */
		if (GetDatabaseEncoding() == PG_UTF8 && p[0] == 0xe2 &&
			((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
			 (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
			return true;
	}
	return false;
}

static bool
is_blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

/*
 * A text argument as a C string.  NULL is 22004 when required; empty or
 * all-blank (unless allow_empty), too long, or containing control
 * characters is 22023.  The value is never echoed in the message: it may be
 * long, or not meant for the log.
 */
char *
am_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname,
			bool required, int maxlen, bool allow_empty)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", argname)));
		return NULL;
	}
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!allow_empty && is_blank(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	if (pg_mbstrlen(s) > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", argname),
				 errdetail("The limit is %d characters.", maxlen)));
	if (has_forbidden_chars(s, allow_empty))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s contains control characters", argname),
				 errdetail("Control characters and Unicode bidirectional controls are not allowed.")));
	return s;
}

/* The actor argument; NULL means the session user. */
char *
am_actor(FunctionCallInfo fcinfo, int argno)
{
	char	   *a = am_arg_text(fcinfo, argno, "actor", false, AM_MAX_TEXT_LEN, false);

	return a ? a : GetUserNameFromId(GetSessionUserId(), false);
}

char *
am_agent_id_arg(FunctionCallInfo fcinfo)
{
	return am_arg_text(fcinfo, 0, "agent_id", true, AM_MAX_ID_LEN, false);
}

/* tags: a flat JSON object of string values, within documented limits */
Jsonb *
am_tags_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *tags;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			nkeys = 0;
	int			depth = 0;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tags must not be null"),
				 errhint("Pass '{}' for no tags.")));
	tags = PG_GETARG_JSONB_P(argno);
	if (VARSIZE(tags) > AM_MAX_TAGS_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tags are too large"),
				 errdetail("The limit is %d bytes.", AM_MAX_TAGS_BYTES)));
	if (!JB_ROOT_IS_OBJECT(tags))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tags must be a JSON object"),
				 errhint("Tags look like '{\"team\": \"payments\"}'.")));
	it = JsonbIteratorInit(&tags->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		if (depth > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags must be a flat object of string values")));
		if (tok == WJB_KEY)
		{
			nkeys++;
			if (v.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tag names must not be empty")));
		}
		else if (tok == WJB_VALUE && v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags must be a flat object of string values")));
	}
	if (nkeys > AM_MAX_TAGS_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too many tags"),
				 errdetail("The limit is %d tags.", AM_MAX_TAGS_KEYS)));
	return tags;
}

/* ----------------------------------------------------------------
 * JSON details for audit events
 * ----------------------------------------------------------------
 */
Jsonb *
am_jsonb_build(int npairs, const char *const *keys, const char *const *vals)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < npairs; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, keys[i]);
		appendStringInfoString(&buf, ": ");
		if (vals[i])
			escape_json(&buf, vals[i]);
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

Jsonb *
am_details1(const char *k, const char *v)
{
	return am_jsonb_build(1, &k, &v);
}

Jsonb *
am_details2(const char *k1, const char *v1, const char *k2, const char *v2)
{
	const char *k[2] = {k1, k2};
	const char *v[2] = {v1, v2};

	return am_jsonb_build(2, k, v);
}

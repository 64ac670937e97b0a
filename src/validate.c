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
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "agentmesh.h"

/* ----------------------------------------------------------------
 * Argument checking
 * ----------------------------------------------------------------
 */
/*
 * Length in bytes of a character at p (which ends at end) that must not
 * appear in names, owners, actors, teams and tags, or 0.  Refused: ASCII and
 * C1 control characters (newline and tab allowed where multiline), and in
 * UTF-8 the characters that make text display differently from what it is,
 * which would let a claimed actor or name look like another: the
 * bidirectional marks (U+200E, U+200F, U+061C), embeddings, overrides and
 * isolates (U+202A-U+202E, U+2066-U+2069), the line and paragraph
 * separators (U+2028, U+2029), the zero-width and other invisible format
 * characters (U+00AD, U+034F, U+200B-U+200D, U+2060-U+2065, U+206A-U+206F,
 * U+FFF9-U+FFFB, U+1D173-U+1D17A, the tag characters U+E0000-U+E007F), the
 * fillers that display as nothing (U+115F, U+1160, U+17B4, U+17B5, U+3164,
 * U+FFA0), the variation selectors (U+180B-U+180F, U+FE00-U+FE0F,
 * U+E0100-U+E01EF) and the byte order mark (U+FEFF).
 */
static const struct
{
	pg_wchar	lo;
	pg_wchar	hi;
}			invisible_ranges[] = {
	{0x0080, 0x009F}, {0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x061C, 0x061C},
	{0x115F, 0x1160}, {0x17B4, 0x17B5}, {0x180B, 0x180F}, {0x200B, 0x200F},
	{0x2028, 0x202E}, {0x2060, 0x206F}, {0x3164, 0x3164}, {0xFE00, 0xFE0F},
	{0xFEFF, 0xFEFF}, {0xFFA0, 0xFFA0}, {0xFFF9, 0xFFFB}, {0x1D173, 0x1D17A},
	{0xE0000, 0xE007F}, {0xE0100, 0xE01EF},
};

static int
forbidden_char_len(const unsigned char *p, const unsigned char *end, bool multiline)
{
	int			len;
	pg_wchar	c;
	int			i;

	if (*p < 0x20 || *p == 0x7f)
		return (multiline && (*p == '\n' || *p == '\t')) ? 0 : 1;
	if (GetDatabaseEncoding() != PG_UTF8 || *p < 0x80)
		return 0;
	/* the server validated the encoding; a lead byte says how long it is */
	len = pg_utf_mblen(p);
	if (len < 2 || len > end - p)
		return 0;
	c = utf8_to_unicode(p);
	for (i = 0; i < lengthof(invisible_ranges); i++)
		if (c >= invisible_ranges[i].lo && c <= invisible_ranges[i].hi)
			return len;
	return 0;
}

static bool
has_forbidden_chars_len(const char *s, size_t len, bool multiline)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;

	for (; p < end; p++)
		if (forbidden_char_len(p, end, multiline) > 0)
			return true;
	return false;
}

static bool
has_forbidden_chars(const char *s, bool multiline)
{
	return has_forbidden_chars_len(s, strlen(s), multiline);
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
				 errdetail("Control characters, Unicode bidirectional controls, line separators, zero-width and other invisible characters are not allowed.")));
	return s;
}

/* The actor argument; NULL means the session user. */
char *
am_actor(FunctionCallInfo fcinfo, int argno)
{
	char	   *a = am_arg_text(fcinfo, argno, "actor", false, AM_MAX_TEXT_LEN, false);

	return a ? a : GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * The agent_id argument.  A credential token passed there by mistake would
 * be echoed by "agent ... does not exist" into the client's error and the
 * server log; anything shaped like one is refused without echoing it.
 */
char *
am_agent_id_arg(FunctionCallInfo fcinfo)
{
	return am_agent_id_arg_opt(fcinfo, true);
}

/* The same, NULL allowed (and returned) unless required. */
char *
am_agent_id_arg_opt(FunctionCallInfo fcinfo, bool required)
{
	char	   *id = am_arg_text(fcinfo, 0, "agent_id", required, AM_MAX_ID_LEN, false);

	if (id != NULL && strncmp(id, AM_TOKEN_PREFIX, strlen(AM_TOKEN_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("agent_id looks like a credential token"),
				 errhint("Pass the agent's id (\"agent:...\") as agent_id; a token goes in the token argument only.")));
	return id;
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
		if ((tok == WJB_KEY || (tok == WJB_VALUE && v.type == jbvString)) &&
			has_forbidden_chars_len(v.val.string.val, v.val.string.len, false))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags contain control characters"),
					 errdetail("Control characters, Unicode bidirectional controls, line separators, zero-width and other invisible characters are not allowed in tag names or values.")));
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
/*
 * Keys of audit details that are not strings.  The callers pass every value
 * as text; from 1.1 on the stored details carry these as JSON numbers, lists
 * and booleans (docs/audit.md lists the keys per event type), so that a
 * reader needs no parsing.  Rows written by 1.0 keep their strings: the
 * hashes cover them, and agentmesh.audit_log reads both forms.
 */
typedef enum AmJsonKind
{
	AM_JSON_STRING,
	AM_JSON_NUMBER,
	AM_JSON_LIST,				/* comma-separated text -> array of strings */
	AM_JSON_BOOL
} AmJsonKind;

static const struct
{
	const char *key;
	AmJsonKind	kind;
}			typed_keys[] = {
	{"silent_seconds", AM_JSON_NUMBER},
	{"heartbeat_interval_seconds", AM_JSON_NUMBER},
	{"credentials_revoked", AM_JSON_NUMBER},
	{"reason_codes", AM_JSON_LIST},
	{"reclaimed", AM_JSON_BOOL},
	{"self_renewed", AM_JSON_BOOL},
};

static AmJsonKind
key_kind(const char *key)
{
	int			i;

	for (i = 0; i < lengthof(typed_keys); i++)
		if (strcmp(typed_keys[i].key, key) == 0)
			return typed_keys[i].kind;
	return AM_JSON_STRING;
}

/* Is s a JSON number (an optional minus, digits, an optional fraction)? */
static bool
is_json_number(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
		p++;
	if (*p == '.')
	{
		p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	return *p == '\0' && (s[0] != '0' || s[1] == '\0' || s[1] == '.');
}

static void
append_typed(StringInfo buf, const char *key, const char *val)
{
	switch (key_kind(key))
	{
		case AM_JSON_NUMBER:
			if (is_json_number(val))
			{
				appendStringInfoString(buf, val);
				return;
			}
			break;
		case AM_JSON_LIST:
			{
				const char *p = val;
				bool		first = true;

				appendStringInfoChar(buf, '[');
				while (*p)
				{
					const char *end = strchr(p, ',');
					int			len;

					/* the orphan rules join codes with ", " */
					while (*p == ' ')
						p++;
					len = end ? end - p : strlen(p);
					while (len > 0 && p[len - 1] == ' ')
						len--;

					if (len > 0)
					{
						if (!first)
							appendStringInfoString(buf, ", ");
						escape_json(buf, pnstrdup(p, len));
						first = false;
					}
					if (!end)
						break;
					p = end + 1;
				}
				appendStringInfoChar(buf, ']');
				return;
			}
		case AM_JSON_BOOL:
			if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0)
			{
				appendStringInfoString(buf, val);
				return;
			}
			break;
		case AM_JSON_STRING:
			break;
	}
	escape_json(buf, val);
}

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
			append_typed(&buf, keys[i], vals[i]);
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

/*
 * The as_of argument of the maintenance functions (argument argno): not
 * null, finite, and - when allow_future_argno names an argument of the call
 * that is not true - at most AM_AS_OF_MAX_FUTURE past the wall clock.  A pass
 * "as of" a later time decommissions agents that are alive now, so a typo in
 * the year must not be able to do that; tests and the demo that simulate
 * later days say so with allow_future => true.  Under the 1.0 SQL
 * declaration, which has no allow_future argument (allow_future_argno not
 * among the call's arguments), the 1.0 behaviour is kept.
 */
TimestampTz
am_as_of_arg(FunctionCallInfo fcinfo, int argno, int allow_future_argno)
{
	TimestampTz as_of;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null")));
	as_of = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite timestamp")));
	if (allow_future_argno >= 0 && allow_future_argno < PG_NARGS())
	{
		bool		allow_future;

		if (PG_ARGISNULL(allow_future_argno))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("allow_future must not be null")));
		allow_future = PG_GETARG_BOOL(allow_future_argno);
		if (!allow_future &&
			as_of > TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												AM_AS_OF_MAX_FUTURE_MS))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of lies more than 5 minutes in the future"),
					 errdetail("A pass as of a later time would act on agents that are alive now; nothing was changed."),
					 errhint("To simulate a later time on purpose, pass allow_future => true.")));
	}
	return as_of;
}

/*
 * A name from the catalog or from a user (a database name, say) as it may
 * appear inside a log line: in double quotes, with backslash, double quote
 * and every control character written as an escape, so that no name can end
 * the line and start one that looks like the server's own.
 */
char *
am_log_quote(const char *s)
{
	StringInfoData buf;
	const unsigned char *p;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '"');
	for (p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfo(&buf, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			appendStringInfo(&buf, "\\x%02x", *p);
		else
			appendStringInfoChar(&buf, (char) *p);
	}
	appendStringInfoChar(&buf, '"');
	return buf.data;
}

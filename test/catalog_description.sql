-- Catalog description of the extension agentmesh_lifecycle, for
-- test/t/030_upgrade.pl: one sorted text line per fact about every object
-- that pg_depend records as a member of the extension (deptype 'e'), and
-- about what hangs off the members (columns, defaults, constraints, indexes,
-- triggers, rules, row-security policies, statistics objects, identity
-- sequences, enum labels, comments, initial privileges, dependencies).  Two
-- databases whose descriptions are equal have the same extension objects,
-- whatever their history (a fresh install of a version, or an older version
-- updated to it).  pg_dump --schema-only leaves extension members out, hence
-- this query.
--
-- Every line is "<object> | <fact>", where <object> is what
-- pg_identify_object() calls it (type and identity).  No OID is ever
-- printed (they differ between databases): references are names, through
-- ::regclass, ::regtype, format_type(), pg_get_userbyid(), pg_identify_object()
-- and the pg_get_*def() functions.  Physical details that a fresh install
-- and an update may legitimately differ in are left out or normalised:
-- column positions are logical (dropped columns do not count), enum labels
-- are numbered by their sort order rather than by enumsortorder's value, a
-- NULL ACL is shown as the default it stands for, ACL items are one line
-- each (grant order does not matter), and atthasmissing is not shown.
-- Sequence values (last_value) are data, not shown.  The column option
-- pg_attver, which the server (Debian's 15.20 at least) stores on every
-- column of a table, view or composite type created by SQL, is left out:
-- its value differs from one database to the next, like an OID.
--
-- Written for PostgreSQL 15 to 18: only catalog columns present in all of
-- them are used (attstattarget is coalesced: -1 on 15/16, NULL on 17+).
SET search_path = pg_catalog;

WITH ext AS (
	SELECT e.* FROM pg_extension e WHERE e.extname = 'agentmesh_lifecycle'
),
-- the members
mem AS (
	SELECT d.classid, d.objid, d.objsubid, i.type || ' ' || i.identity AS k
	  FROM ext
	  JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass
		AND d.refobjid = ext.oid AND d.deptype = 'e'
	 CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) i
),
-- the member schemas' names (comments are collected by schema)
memschema AS (
	SELECT n.nspname FROM mem m JOIN pg_namespace n
		ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
),
-- relations: members, the relations of member composite types, and
-- sequences owned by a member table's column (identity or serial)
rel AS (
	SELECT c.oid, c.relkind, c.relpersistence, c.relam, c.relowner, c.reloptions,
		   c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
		   c.relispartition, c.reltoastrelid, c.reloftype, c.relispopulated,
		   i.type || ' ' || i.identity AS k
	  FROM pg_class c
	 CROSS JOIN LATERAL pg_identify_object('pg_class'::regclass, c.oid, 0) i
	 WHERE c.oid IN (SELECT objid FROM mem WHERE classid = 'pg_class'::regclass)
		OR c.oid IN (SELECT t.typrelid FROM mem m JOIN pg_type t
						ON m.classid = 'pg_type'::regclass AND t.oid = m.objid)
		OR (c.relkind = 'S' AND c.oid IN (
				SELECT d.objid FROM pg_depend d
				 WHERE d.classid = 'pg_class'::regclass
				   AND d.refclassid = 'pg_class'::regclass
				   AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
				   AND d.refobjid IN (SELECT objid FROM mem
									   WHERE classid = 'pg_class'::regclass)))
),
-- owner and ACL of every object that has them (NULL ACL = its default)
own AS (
	SELECT m.k, p.proowner AS owner, coalesce(p.proacl, acldefault('f', p.proowner)) AS acl
	  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
	UNION ALL
	SELECT m.k, t.typowner, coalesce(t.typacl, acldefault('T', t.typowner))
	  FROM mem m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
	UNION ALL
	SELECT m.k, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
	  FROM mem m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
	UNION ALL
	SELECT r.k, r.relowner,
		   CASE WHEN r.relkind <> 'c' THEN
				coalesce(r.relacl, acldefault((CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END)::"char",
											  r.relowner)) END
	  FROM rel r
	UNION ALL
	SELECT m.k, e.evtowner, NULL
	  FROM mem m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass
		AND e.oid = m.objid
	UNION ALL
	SELECT m.k, o.oprowner, NULL
	  FROM mem m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
),
-- one level of dependencies of the members, both ways, as names
deps AS (
	SELECT DISTINCT m.k || ' | ' || fi.type || ' ' || fi.identity || ' depends on '
		   || ti.type || ' ' || ti.identity || ' (' || d.deptype::text || ')' AS line
	  FROM mem m
	  JOIN pg_depend d ON (d.classid = m.classid AND d.objid = m.objid)
		OR (d.refclassid = m.classid AND d.refobjid = m.objid)
	 CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) fi
	 CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) ti
	 WHERE d.refclassid <> 'pg_extension'::regclass	-- the member list says that
	   AND d.classid <> 'pg_extension'::regclass
	   -- objects whose names carry an OID
	   AND coalesce(fi.schema, '') <> 'pg_toast' AND coalesce(ti.schema, '') <> 'pg_toast'
	   AND NOT (d.classid = 'pg_trigger'::regclass
				AND (SELECT tgisinternal FROM pg_trigger WHERE oid = d.objid))
),
acl_line AS (
	SELECT o.k, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		   || ' ' || a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
		   || ' (granted by ' || pg_get_userbyid(a.grantor) || ')' AS item
	  FROM own o CROSS JOIN LATERAL aclexplode(o.acl) a
),
lines AS (
	-- the extension
	SELECT 'extension ' || e.extname || ' | ' || f AS line
	  FROM ext e CROSS JOIN LATERAL (VALUES
		('version ' || e.extversion),
		('owner ' || pg_get_userbyid(e.extowner)),
		('schema ' || e.extnamespace::regnamespace::text),
		('relocatable ' || e.extrelocatable::text)) v(f)
	UNION ALL
	SELECT 'extension ' || e.extname || ' | dumped table ' || c.rel::regclass::text
		   || ' condition ' || quote_literal(c.cond)
	  FROM ext e CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS c(rel, cond)
	UNION ALL
	SELECT 'extension ' || e.extname || ' | requires ' || r.extname
	  FROM ext e
	  JOIN pg_depend d ON d.classid = 'pg_extension'::regclass AND d.objid = e.oid
		AND d.refclassid = 'pg_extension'::regclass
	  JOIN pg_extension r ON r.oid = d.refobjid
	UNION ALL
	-- the member list
	SELECT 'member | ' || m.k FROM mem m
	UNION ALL
	-- owners and ACLs
	SELECT o.k || ' | owner ' || pg_get_userbyid(o.owner) FROM own o
	UNION ALL
	SELECT a.k || ' | acl ' || a.item FROM acl_line a
	UNION ALL
	-- functions and procedures: the whole definition, line by line
	SELECT m.k || ' | def ' || lpad(v.n::text, 3, '0') || ' ' || v.l
	  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
	 CROSS JOIN LATERAL regexp_split_to_table(
			CASE WHEN p.prokind = 'a'
				 THEN 'aggregate ' || pg_get_function_arguments(p.oid) || ' -> '
					  || pg_get_function_result(p.oid)
				 ELSE regexp_replace(pg_get_functiondef(p.oid), E'\n$', '') END, E'\n')
		   WITH ORDINALITY AS v(l, n)
	UNION ALL
	-- relations
	SELECT r.k || ' | ' || f
	  FROM rel r CROSS JOIN LATERAL (VALUES
		('relkind ' || r.relkind::text),
		('persistence ' || r.relpersistence::text),
		('access method ' || coalesce((SELECT amname FROM pg_am WHERE oid = r.relam), '-')),
		('options ' || coalesce(nullif(array_to_string(ARRAY(
				SELECT o FROM unnest(r.reloptions) o ORDER BY o), ','), ''), '-')),
		('toast options ' || coalesce(nullif(array_to_string(ARRAY(
				SELECT o FROM pg_class t CROSS JOIN LATERAL unnest(t.reloptions) o
				 WHERE t.oid = r.reltoastrelid ORDER BY o), ','), ''), '-')),
		('row security ' || r.relrowsecurity::text || ' forced ' || r.relforcerowsecurity::text),
		('replica identity ' || r.relreplident::text),
		('partition ' || r.relispartition::text
			|| coalesce(' ' || pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = r.oid), r.oid), '')),
		('partition key ' || coalesce(pg_get_partkeydef(r.oid), '-')),
		('of type ' || CASE WHEN r.reloftype = 0 THEN '-' ELSE r.reloftype::regtype::text END),
		('populated ' || r.relispopulated::text)) v(f)
	UNION ALL
	SELECT r.k || ' | inherits ' || lpad(i.inhseqno::text, 3, '0') || ' ' || i.inhparent::regclass::text
	  FROM rel r JOIN pg_inherits i ON i.inhrelid = r.oid
	UNION ALL
	-- columns, in logical order
	SELECT r.k || ' | column ' || lpad((row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum))::text, 3, '0')
		   || ' ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
		   || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
		   || CASE WHEN a.attgenerated <> '' THEN ' GENERATED (' || a.attgenerated::text || ')'
				   ELSE '' END
		   || coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		   || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
								 WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
		   || CASE WHEN a.attcollation <> 0 THEN ' COLLATE ' || a.attcollation::regcollation::text
				   ELSE '' END
		   || ' storage ' || a.attstorage::text
		   || CASE WHEN a.attcompression <> '' THEN ' compression ' || a.attcompression::text
				   ELSE '' END
		   || ' statistics ' || coalesce(a.attstattarget::int4, -1)::text
		   || coalesce(' options ' || nullif(array_to_string(ARRAY(
				SELECT o FROM unnest(a.attoptions) o
				 WHERE o NOT LIKE 'pg\_attver=%' ORDER BY o), ','), ''), '')
		   || CASE WHEN NOT a.attislocal OR a.attinhcount <> 0
				   THEN ' inherited ' || a.attinhcount::text ELSE '' END
	  FROM rel r
	  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	UNION ALL
	SELECT r.k || ' | column ' || quote_ident(a.attname) || ' acl '
		   || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END
		   || ' ' || x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
		   || ' (granted by ' || pg_get_userbyid(x.grantor) || ')'
	  FROM rel r
	  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	 CROSS JOIN LATERAL aclexplode(a.attacl) x
	UNION ALL
	-- views and materialized views
	SELECT r.k || ' | query ' || lpad(v.n::text, 3, '0') || ' ' || v.l
	  FROM rel r CROSS JOIN LATERAL regexp_split_to_table(pg_get_viewdef(r.oid), E'\n')
		   WITH ORDINALITY AS v(l, n)
	 WHERE r.relkind IN ('v', 'm')
	UNION ALL
	-- constraints of tables (NOT NULL ones too, on 18) and of domains
	SELECT o.k || ' | constraint ' || quote_ident(c.conname) || ' (' || c.contype::text || ') '
		   || pg_get_constraintdef(c.oid)
		   || CASE WHEN NOT c.conislocal OR c.coninhcount <> 0
				   THEN ' inherited ' || c.coninhcount::text ELSE '' END
	  FROM pg_constraint c
	  JOIN (SELECT r.oid, r.k, 'pg_class'::regclass AS cls FROM rel r
			UNION ALL
			SELECT m.objid, m.k, m.classid FROM mem m WHERE m.classid = 'pg_type'::regclass) o
		ON (o.cls = 'pg_class'::regclass AND c.conrelid = o.oid)
		OR (o.cls = 'pg_type'::regclass AND c.contypid = o.oid)
	UNION ALL
	-- indexes
	SELECT r.k || ' | index ' || quote_ident(ic.relname) || ': ' || pg_get_indexdef(x.indexrelid)
		   || CASE WHEN x.indisclustered THEN ' (clustered)' ELSE '' END
		   || CASE WHEN x.indisreplident THEN ' (replica identity)' ELSE '' END
		   || CASE WHEN NOT x.indisvalid THEN ' (invalid)' ELSE '' END
	  FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class ic ON ic.oid = x.indexrelid
	UNION ALL
	-- triggers (not the internal ones of foreign keys)
	SELECT r.k || ' | trigger ' || quote_ident(t.tgname) || ' enabled ' || t.tgenabled::text
		   || ': ' || pg_get_triggerdef(t.oid)
	  FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid
	 WHERE NOT t.tgisinternal
	UNION ALL
	-- rules (not a view's own)
	SELECT r.k || ' | rule ' || quote_ident(w.rulename) || ' enabled ' || w.ev_enabled::text
		   || ': ' || pg_get_ruledef(w.oid)
	  FROM rel r JOIN pg_rewrite w ON w.ev_class = r.oid
	 WHERE w.rulename <> '_RETURN'
	UNION ALL
	-- row-security policies
	SELECT r.k || ' | policy ' || quote_ident(p.polname) || ' for ' || p.polcmd::text
		   || CASE WHEN p.polpermissive THEN ' permissive' ELSE ' restrictive' END
		   || ' to ' || (SELECT string_agg(g, ',' ORDER BY g)
						   FROM (SELECT CASE WHEN ro = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(ro) END AS g
								   FROM unnest(p.polroles) ro) s)
		   || coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
		   || coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
	  FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
	UNION ALL
	-- extended statistics
	SELECT r.k || ' | statistics ' || pg_get_statisticsobjdef(s.oid)
	  FROM rel r JOIN pg_statistic_ext s ON s.stxrelid = r.oid
	UNION ALL
	-- sequences (not their values)
	SELECT r.k || ' | sequence ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart::text
		   || ' increment ' || s.seqincrement::text || ' min ' || s.seqmin::text
		   || ' max ' || s.seqmax::text || ' cache ' || s.seqcache::text
		   || ' cycle ' || s.seqcycle::text
	  FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
	UNION ALL
	SELECT r.k || ' | owned by ' || d.refobjid::regclass::text || '.' || quote_ident(a.attname)
		   || ' (' || d.deptype::text || ')'
	  FROM rel r
	  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid
		AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
	  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
	 WHERE r.relkind = 'S'
	UNION ALL
	-- types
	SELECT m.k || ' | ' || f
	  FROM mem m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
	 CROSS JOIN LATERAL (VALUES
		('type ' || t.typtype::text || ' category ' || t.typcategory::text
			|| ' preferred ' || t.typispreferred::text || ' delimiter ' || t.typdelim::text),
		('storage len ' || t.typlen::text || ' byval ' || t.typbyval::text
			|| ' align ' || t.typalign::text || ' storage ' || t.typstorage::text),
		('functions in ' || t.typinput::regproc::text || ' out ' || t.typoutput::regproc::text
			|| ' recv ' || t.typreceive::regproc::text || ' send ' || t.typsend::regproc::text
			|| ' typmod in ' || t.typmodin::regproc::text || ' typmod out ' || t.typmodout::regproc::text
			|| ' analyze ' || t.typanalyze::regproc::text
			|| ' subscript ' || t.typsubscript::regproc::text),
		('array type ' || CASE WHEN t.typarray = 0 THEN '-' ELSE format_type(t.typarray, NULL) END
			|| ' element ' || CASE WHEN t.typelem = 0 THEN '-' ELSE format_type(t.typelem, NULL) END),
		('domain base ' || CASE WHEN t.typbasetype = 0 THEN '-'
								ELSE format_type(t.typbasetype, t.typtypmod) END
			|| ' not null ' || t.typnotnull::text
			|| ' default ' || coalesce(pg_get_expr(t.typdefaultbin, 0), t.typdefault, '-')
			|| ' collation ' || CASE WHEN t.typcollation = 0 THEN '-'
									 ELSE t.typcollation::regcollation::text END)) v(f)
	UNION ALL
	SELECT m.k || ' | label ' || lpad((row_number() OVER (PARTITION BY e.enumtypid
														   ORDER BY e.enumsortorder))::text, 3, '0')
		   || ' ' || quote_literal(e.enumlabel)
	  FROM mem m JOIN pg_enum e ON m.classid = 'pg_type'::regclass AND e.enumtypid = m.objid
	UNION ALL
	SELECT m.k || ' | range subtype ' || format_type(g.rngsubtype, NULL)
		   || ' opclass ' || (SELECT quote_ident(n.nspname) || '.' || quote_ident(oc.opcname)
								FROM pg_opclass oc JOIN pg_namespace n ON n.oid = oc.opcnamespace
							   WHERE oc.oid = g.rngsubopc)
		   || ' collation ' || CASE WHEN g.rngcollation = 0 THEN '-'
									ELSE g.rngcollation::regcollation::text END
		   || ' canonical ' || g.rngcanonical::regproc::text
		   || ' subdiff ' || g.rngsubdiff::regproc::text
		   || ' multirange ' || format_type(g.rngmultitypid, NULL)
	  FROM mem m JOIN pg_range g ON m.classid = 'pg_type'::regclass AND g.rngtypid = m.objid
	UNION ALL
	-- casts, operators, event triggers
	SELECT m.k || ' | cast function '
		   || CASE WHEN c.castfunc = 0 THEN '-' ELSE c.castfunc::regprocedure::text END
		   || ' context ' || c.castcontext::text || ' method ' || c.castmethod::text
	  FROM mem m JOIN pg_cast c ON m.classid = 'pg_cast'::regclass AND c.oid = m.objid
	UNION ALL
	SELECT m.k || ' | operator kind ' || o.oprkind::text
		   || ' result ' || format_type(o.oprresult, NULL)
		   || ' code ' || o.oprcode::regproc::text
		   || ' commutator ' || CASE WHEN o.oprcom = 0 THEN '-' ELSE o.oprcom::regoperator::text END
		   || ' negator ' || CASE WHEN o.oprnegate = 0 THEN '-' ELSE o.oprnegate::regoperator::text END
		   || ' restrict ' || o.oprrest::regproc::text || ' join ' || o.oprjoin::regproc::text
		   || ' merges ' || o.oprcanmerge::text || ' hashes ' || o.oprcanhash::text
	  FROM mem m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
	UNION ALL
	SELECT m.k || ' | event trigger on ' || e.evtevent || ' function ' || e.evtfoid::regprocedure::text
		   || ' enabled ' || e.evtenabled::text || ' tags '
		   || coalesce(nullif(array_to_string(ARRAY(
				SELECT x FROM unnest(e.evttags) x ORDER BY x), ','), ''), '-')
	  FROM mem m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass
		AND e.oid = m.objid
	UNION ALL
	-- comments on the extension, its members and everything in its schemas
	SELECT 'comment | ' || i.type || ' ' || i.identity || ' | '
		   || replace(quote_literal(d.description), E'\n', '\n')
	  FROM pg_description d
	 CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) i
	 WHERE d.objoid >= 16384	-- FirstNormalObjectId: not a built-in object
	   AND (i.schema IN (SELECT nspname FROM memschema)
			OR (d.classoid, d.objoid) IN (SELECT classid, objid FROM mem)
			OR (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rel))
			OR (d.classoid = 'pg_extension'::regclass AND d.objoid IN (SELECT oid FROM ext)))
	UNION ALL
	-- initial privileges (what pg_dump compares the current ACLs with)
	SELECT 'initial privileges | ' || i.type || ' ' || i.identity || ' | ' || ip.privtype::text
		   || coalesce(' ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
					   || ' ' || a.privilege_type
					   || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
					   || ' (granted by ' || pg_get_userbyid(a.grantor) || ')', ' (none)')
	  FROM pg_init_privs ip
	 CROSS JOIN LATERAL pg_identify_object(ip.classoid, ip.objoid, ip.objsubid) i
	  LEFT JOIN LATERAL aclexplode(ip.initprivs) a ON true
	 WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM mem)
		OR (ip.classoid = 'pg_class'::regclass AND ip.objoid IN (SELECT oid FROM rel))
	UNION ALL
	-- default privileges of the database
	SELECT 'default privileges | ' || pg_get_userbyid(d.defaclrole)
		   || ' in ' || CASE WHEN d.defaclnamespace = 0 THEN '-'
							 ELSE d.defaclnamespace::regnamespace::text END
		   || ' on ' || d.defaclobjtype::text || ' | '
		   || coalesce(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
					   || ' ' || a.privilege_type
					   || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
					   || ' (granted by ' || pg_get_userbyid(a.grantor) || ')', '(none)')
	  FROM pg_default_acl d
	  LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true
	UNION ALL
	SELECT line FROM deps
)
SELECT line FROM lines ORDER BY line COLLATE "C";

--
-- catalog_comments: the catalog describes itself.  Every object the
-- extension creates (each pg_depend member: schema, tables, sequences,
-- views, types, functions and procedures, event trigger), every column of
-- its tables, views and composite types, and each of its group roles has a
-- COMMENT; functions' comments name their arguments.  Each query below
-- lists what lacks one and must return no row.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

-- members and their columns without a comment
CREATE TEMP VIEW missing_comments AS
WITH ext AS (
	SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'agentmesh_lifecycle'
), mem AS (
	SELECT d.classid, d.objid
	  FROM pg_catalog.pg_depend d, ext
	 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
	   AND d.refobjid = ext.oid AND d.deptype = 'e'
	   -- not the implicit types (arrays, row types of tables and views),
	   -- which PostgreSQL 18 records as members too
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
						LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
					   WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
						 AND t.oid = d.objid
						 AND (t.typcategory = 'A' OR c.relkind IS DISTINCT FROM 'c' AND t.typrelid <> 0))
), cols AS (
	-- columns of member tables and views (not sequences' internal columns)
	SELECT c.oid AS relid, a.attnum
	  FROM mem m
	  JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
		AND c.oid = m.objid AND c.relkind <> 'S'
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	-- columns of member composite types
	SELECT t.typrelid, a.attnum
	  FROM mem m
	  JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
		AND t.oid = m.objid AND t.typrelid <> 0
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
)
SELECT i.type, i.identity AS missing_comment
  FROM mem m
 CROSS JOIN LATERAL pg_catalog.pg_identify_object(m.classid, m.objid, 0) i
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_description d
					WHERE d.classoid = m.classid AND d.objoid = m.objid AND d.objsubid = 0)
UNION ALL
SELECT i.type, i.identity
  FROM cols c
 CROSS JOIN LATERAL pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass,
												 c.relid, c.attnum) i
 WHERE pg_catalog.col_description(c.relid, c.attnum) IS NULL;
SELECT * FROM missing_comments ORDER BY 1, 2;

-- the group roles without a comment
SELECT r.rolname AS role_without_comment
  FROM pg_catalog.pg_roles r
 WHERE r.rolname IN ('agentmesh_admin', 'agentmesh_approver', 'agentmesh_requester',
					 'agentmesh_agent', 'agentmesh_auditor')
   AND pg_catalog.shobj_description(r.oid, 'pg_authid') IS NULL;

-- functions taking arguments whose comment does not show its call form
SELECT p.oid::pg_catalog.regprocedure AS comment_without_arguments
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'agentmesh'::pg_catalog.regnamespace
   AND p.pronargs > 0 AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
   AND pg_catalog.obj_description(p.oid, 'pg_proc') NOT LIKE p.proname || '(%';

-- the negative control: objects whose comment is removed are found
COMMENT ON COLUMN agentmesh.agents.purpose IS NULL;
COMMENT ON FUNCTION agentmesh.lm_summary() IS NULL;
COMMENT ON COLUMN agentmesh.credential_grant.token IS NULL;
SELECT * FROM missing_comments ORDER BY 1, 2;

-- lm_transitions().events is a text[] (drivers read it as a list)
SELECT pg_catalog.pg_typeof(events) AS events_type, events
  FROM agentmesh.lm_transitions() WHERE operation = 'decommission' AND from_state = 'active';

DROP VIEW missing_comments;
DROP EXTENSION agentmesh_lifecycle;

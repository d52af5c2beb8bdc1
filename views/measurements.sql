-- sr2fhir's `measurements` table rebuilt from FHIR R5 alone: the rows of the SQL-on-FHIR views in this folder,
-- joined on their resource and reference keys. Each view is a table of the same name. Plain SQL (LEFT JOIN,
-- COALESCE): runs in SQLite, DuckDB, Spark SQL and most engines. Columns the FHIR does not carry are listed in
-- README.md; a measurement without a group (a derived one) has null group columns, as in the table.
SELECT
  s.study_instance_uid,
  p.patient_id,
  s.study_date,
  t.tracking_identifier,
  t.tracking_uid,
  g.finding_category_code,
  g.finding_category_display,
  g.finding_code,
  g.finding_system,
  g.finding_display,
  -- The measurement's finding site: a BodyStructure, or (STU1, a site without modifiers) the bodySite code.
  COALESCE(site.site_code, m.body_site_code) AS finding_site_code,
  COALESCE(site.site_system, m.body_site_system) AS finding_site_system,
  COALESCE(site.site_display, m.body_site_display) AS finding_site_display,
  site.laterality_code,
  site.laterality_display,
  m.measurement_code,
  m.measurement_system,
  m.measurement_display,
  m.value,
  m.unit_code,
  m.unit_display,
  COALESCE(m.absent_qualifier_code, m.noted_qualifier_code) AS value_qualifier_code,
  m.absent_qualifier_display AS value_qualifier_display,
  m.derivation_code,
  m.derivation_display,
  m.method_code,
  m.method_display,
  a.algorithm_name,
  a.algorithm_version,
  m.is_derived,
  m.observation_uid,
  m.observation_id,
  g.group_observation_id
FROM measurement AS m
LEFT JOIN measurement_group AS g ON g.member_key = m.observation_key
LEFT JOIN patient AS p ON p.patient_key = m.patient_key
LEFT JOIN imaging_study AS s ON s.study_key = m.study_key
LEFT JOIN body_structure AS site ON site.body_structure_key = m.site_key
-- Tracking identifiers: the ballot's tracking BodyStructure in the group's focus, else (STU1) the group's site.
LEFT JOIN body_structure AS t ON t.body_structure_key = COALESCE(g.tracking_key, g.site_key)
LEFT JOIN algorithm AS a ON a.device_key = m.device_key

-- sr2fhir's `qualitative_evaluations` table rebuilt from FHIR R5 alone: the rows of the SQL-on-FHIR views in this
-- folder, joined on their resource and reference keys (see measurements.sql). An evaluation's finding site is its
-- group's (STU1 evaluations carry none of their own); report-level evaluations have null group columns.
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
  COALESCE(site.site_code, g.body_site_code) AS finding_site_code,
  COALESCE(site.site_system, g.body_site_system) AS finding_site_system,
  COALESCE(site.site_display, g.body_site_display) AS finding_site_display,
  site.laterality_code,
  site.laterality_display,
  e.evaluation_code,
  e.evaluation_system,
  e.evaluation_display,
  e.value_code,
  e.value_system,
  e.value_display,
  e.value_text,
  a.algorithm_name,
  a.algorithm_version,
  e.observation_uid,
  e.observation_id,
  g.group_observation_id
FROM qualitative_evaluation AS e
LEFT JOIN measurement_group AS g ON g.member_key = e.observation_key
LEFT JOIN patient AS p ON p.patient_key = e.patient_key
LEFT JOIN imaging_study AS s ON s.study_key = e.study_key
LEFT JOIN body_structure AS site ON site.body_structure_key = g.site_key
LEFT JOIN body_structure AS t ON t.body_structure_key = COALESCE(g.tracking_key, g.site_key)
LEFT JOIN algorithm AS a ON a.device_key = e.device_key

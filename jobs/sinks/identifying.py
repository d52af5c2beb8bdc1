"""The table columns that can identify a patient, and so are kept out of anything beside the data itself: no
Delta file statistics on them (statistics copy each file's smallest and largest values into the table's log,
which catalogs, log shippers and anyone who may list a table read), never in a log line or a message.

- `patient_id`: the Patient ID itself.
- `study_date`: a date of care (the `study_year` partition, a year, is not identifying).
- `source_file`, `source_path`: lake paths, which often name the patient (folders per patient ID or name).
- `sop_instance_uid`, `study_instance_uid`, `series_instance_uid`, `tracking_uid`, `observation_uid`: DICOM UIDs,
  which de-identification replaces (PS3.15 Annex E): their roots can carry dates, device serial numbers, sites.
- `tracking_identifier`, `value_text`, `message`: free text a producer or person wrote.
"""

IDENTIFYING_COLUMNS = frozenset(
    {
        "patient_id",
        "study_date",
        "source_file",
        "source_path",
        "sop_instance_uid",
        "study_instance_uid",
        "series_instance_uid",
        "tracking_uid",
        "observation_uid",
        "tracking_identifier",
        "value_text",
        "message",
    }
)

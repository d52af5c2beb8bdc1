"""Where mapped results go: FHIR NDJSON with its bulk-data manifest, the research tables, the ledger."""

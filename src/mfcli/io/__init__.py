"""The only code that knows file formats: JSONL records and checkpoint directories."""

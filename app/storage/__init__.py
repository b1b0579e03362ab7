"""Storage: the database and its tables, conversations, the usage ledger, encryption at rest, migrations."""

"""Backup and restore of a whole installation as one set: both vector collections, the event store's
tables, and the published model versions, with a manifest that names what each file holds."""

from recommender.backup.archive import BackupError, Manifest, create_backup, restore_backup

__all__ = ["BackupError", "Manifest", "create_backup", "restore_backup"]

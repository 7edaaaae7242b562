"""Backup and disaster recovery: a content-addressed store of snapshots, restore, verify."""

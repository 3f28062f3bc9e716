"""Bulk jobs: a queue in the database, claimed by any number of workers."""

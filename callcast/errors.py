"""User-facing errors: each message says what failed, why, and what to do next."""

from __future__ import annotations


class CallcastError(Exception):
    """Base of every error a person running callcast is meant to read."""


class ConfigurationError(CallcastError):
    """A setting is missing or malformed."""


class SourceDatabaseError(CallcastError):
    """The source database cannot be reached or read."""


class TransientError(CallcastError):
    """A failure worth retrying (network blip, lock timeout, throttling)."""


class StorageError(CallcastError):
    """The lake cannot be read or written."""


class PartitionNotFoundError(StorageError):
    """No committed partition matches the request."""


class ReconciliationError(CallcastError):
    """An exported file does not match the source (row counts differ)."""

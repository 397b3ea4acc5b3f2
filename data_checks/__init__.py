"""Data checks of the raw export partitions: suites as code, chunked validation, quarantine errors.

Pure Python (no Prefect). Great Expectations is imported only inside the functions that run it.
"""

from data_checks.config import ChecksConfig, ValueRange
from data_checks.errors import PartitionNotValidatedError, PartitionRefusedError, QuarantinedPartitionError
from data_checks.result import CheckResult, FailedExpectation

__all__ = [
    "CheckResult",
    "ChecksConfig",
    "FailedExpectation",
    "PartitionNotValidatedError",
    "PartitionRefusedError",
    "QuarantinedPartitionError",
    "ValueRange",
]

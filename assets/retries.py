"""Step retries for failures that a later attempt can fix (a busy server, a lost connection).

Failures that no retry fixes (bad input in strict mode, objects Weaviate refuses) are raised as
`Failure(allow_retries=False)` and end the step at once. Run-level retries in dagster.yaml are
set not to retry runs whose steps failed, so the two never stack.
"""

from dagster import Backoff, Jitter, RetryPolicy

TRANSIENT = RetryPolicy(
    max_retries=3, delay=15, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)

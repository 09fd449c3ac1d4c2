"""shmq for Python: SQS-style message queues in POSIX shared memory.

    import shmq

    with shmq.Client() as client:              # the shmqd of namespace "default"
        client.create_queue("jobs")
        with client.open_queue("jobs") as jobs:
            jobs.send("hello", attributes={"kind": "greeting"})
            for message in jobs.receive(max_messages=10, wait_time=5):
                print(message.text, message.attributes)
                message.delete()

Send, receive and delete work directly in shared memory (libshmq, the C++
library, bound with pybind11); queue administration goes to the daemon.
Calls that can block (receive, admin calls) release the GIL. Failures raise
shmq.Error or one of its subclasses; .code is the library's stable error
name (e.g. "queue_does_not_exist"). An empty receive is an empty list.

The same calls work against an SQS endpoint over HTTP(S): Amazon SQS, or a
shmqd bridge on another host (every call then blocks on the network, and
releases the GIL):

    client = shmq.Client(endpoint="https://sqs.eu-west-1.amazonaws.com")
    client = shmq.Client(endpoint="http://queues.internal:9324",
                         access_key_id="AKID", secret_access_key="...")

shmq.Client() with no arguments uses the endpoint SHMQ_ENDPOINT names, if
it is set; shmq.Client("ns") is always the local daemon of that namespace.
"""

from ._shmq import (
    BatchResult,
    Client,
    Message,
    MessageAttribute,
    Queue,
    QueueCounts,
    SendResult,
    __version__,
    _error_names,
    _set_error_classes,
)


class Error(Exception):
    """A failure of shmq. code: the library's error name (shmq::errc_name),
    e.g. "queue_full"; message: what happened and what to do."""

    def __init__(self, message, code="internal"):
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self):
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class QueueDoesNotExist(Error):
    """No such queue, or it was deleted (SQS QueueDoesNotExist)."""


class QueueNameExists(Error):
    """create_queue with other attributes than the existing queue's (SQS QueueNameExists)."""


class DaemonUnavailable(Error):
    """No shmqd serves this namespace, or it went away; a remote endpoint
    did not answer (or failed) through every attempt."""


class QueueFull(Error):
    """No room for the message: slots or memory limit (SQS OverLimit)."""


class OverLimit(Error):
    """A limit other than the queue's room: messages in flight, permissions (SQS OverLimit)."""


class MessageTooLarge(Error):
    """The body and attributes, or a batch, exceed MaximumMessageSize."""


class InvalidReceiptHandle(Error):
    """The receipt handle is not this queue's, or no longer valid: the message
    was deleted or received again (SQS ReceiptHandleIsInvalid)."""


class MessageNotInflight(Error):
    """change_visibility of a message nobody holds (SQS MessageNotInflight)."""


class InvalidParameter(Error, ValueError):
    """A name, attribute, parameter or batch the queue refuses."""


class PermissionDenied(Error, PermissionError):
    """The daemon refused this user, or the segment's permissions did; a
    remote endpoint refused the credentials or the signature."""


class QueueBusy(Error):
    """The queue's lock stayed held longer than this process waits."""


class Throttled(Error):
    """A remote endpoint throttled the request through every attempt (SQS
    RequestThrottled): slow down, or allow more attempts (max_attempts)."""


# The one table from the library's error names to the classes raised for
# them; names not listed raise Error itself.
ERROR_CLASSES = {
    "queue_does_not_exist": QueueDoesNotExist,
    "queue_name_exists": QueueNameExists,
    "daemon_unavailable": DaemonUnavailable,
    "queue_full": QueueFull,
    "too_many_in_flight": OverLimit,
    "over_limit": OverLimit,
    "message_too_large": MessageTooLarge,
    "batch_request_too_long": MessageTooLarge,
    "invalid_receipt_handle": InvalidReceiptHandle,
    "stale_receipt_handle": InvalidReceiptHandle,
    "receipt_handle_expired": InvalidReceiptHandle,
    "message_not_in_flight": MessageNotInflight,
    "invalid_message_contents": InvalidParameter,
    "invalid_message_attribute": InvalidParameter,
    "missing_parameter": InvalidParameter,
    "invalid_queue_name": InvalidParameter,
    "invalid_attribute_name": InvalidParameter,
    "invalid_attribute_value": InvalidParameter,
    "invalid_parameter_value": InvalidParameter,
    "empty_batch_request": InvalidParameter,
    "too_many_entries_in_batch": InvalidParameter,
    "batch_entry_ids_not_distinct": InvalidParameter,
    "invalid_batch_entry_id": InvalidParameter,
    "permission_denied": PermissionDenied,
    "queue_busy": QueueBusy,
    "throttled": Throttled,
}

# The classes are the package's, wherever they are defined.
for _cls in (BatchResult, Client, Message, MessageAttribute, Queue, QueueCounts, SendResult):
    _cls.__module__ = __name__

_unknown = set(ERROR_CLASSES) - set(_error_names())
assert not _unknown, f"ERROR_CLASSES names codes the library does not have: {_unknown}"
_set_error_classes(Error, dict(ERROR_CLASSES))

__all__ = [
    "BatchResult", "Client", "DaemonUnavailable", "Error", "InvalidParameter", "InvalidReceiptHandle", "Message",
    "MessageAttribute", "MessageNotInflight", "MessageTooLarge", "OverLimit", "PermissionDenied", "Queue",
    "QueueBusy", "QueueCounts", "QueueDoesNotExist", "QueueFull", "QueueNameExists", "SendResult", "Throttled",
    "__version__",
]

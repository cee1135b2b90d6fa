"""Exceptions of the kernel, each saying what happened and whether retrying can help.

Like ZODB's own errors, a kernel error is *transient* when the same operation may succeed if
simply tried again (the state moved under it, the server went away for a moment) and *final*
when only a change of input or configuration can help. `BatosError.transient` says which;
`transaction.interfaces.TransientError` remains the signal the retry loops act on.
"""


class BatosError(Exception):
    """Base of every kernel error; `transient` tells a caller whether a retry can help."""

    transient = False


class Terminated(KeyboardInterrupt):
    """SIGTERM asked the process to end (raised in the main thread, as `KeyboardInterrupt` is
    for SIGINT, so that the same clean-up runs). Unlike Ctrl-C in a console, which cancels a
    request and returns to the prompt, it always ends the command."""


class HomeError(BatosError):
    """A data directory is missing, foreign (not a BAT OS home) or corrupt. Final."""


class ConfigError(BatosError):
    """A configuration value is missing or malformed; the message names the setting. Final."""


class ServerUnavailable(BatosError):
    """No ZEO server answers at the configured address. Transient: start the server and retry."""

    transient = True


class PathError(BatosError, LookupError):
    """A lobby path names nothing, or something that is not an object. Final."""


class SlotError(BatosError, ValueError):
    """A slot name or slot value cannot be stored (reserved name, `_` prefix, bad JSON). Final."""


class MessageNotUnderstood(BatosError, AttributeError):
    """A receiver has neither a slot nor a method for a selector (the `_doesNotUnderstand` miss).

    It is an `AttributeError`, so `getattr(obj, name, default)` and `hasattr` keep working.
    Final for this receiver as it stands; a learned method can change that.
    """

    def __init__(self, receiver_name, selector, receiver_oid=None, arguments=None):
        self.receiver_name = receiver_name
        self.selector = selector
        self.receiver_oid = receiver_oid
        self.arguments = arguments
        super().__init__(f"{receiver_name} does not understand {selector!r}")


class RetriesExhausted(BatosError):
    """A transaction kept meeting transient errors until its retry budget ran out.

    Transient in nature: the caller may try the whole operation again later.
    """

    transient = True


class StorageFull(BatosError):
    """The disk holding the image is full (or over quota): the commit was refused, nothing of
    it was written.

    Not transient: trying again at once meets the same full disk, so retry loops must not spin
    on it. It is recoverable: once space is freed on the server's disk, the same operation
    succeeds and the image is as it was before the failed commit.
    """


class TooLarge(BatosError):
    """A request, reply or record is larger than its configured bound (see `kernel.limits`).

    Final: the same input is refused again; a smaller one, or a higher bound, can pass.
    """

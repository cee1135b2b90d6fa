"""The client side of BATOS/1: send a request to the orchestrator, get its reply.

Used by `batos ask`, by the console, and by workers that need another persona's service
(mandates go to BRICK). One `Client` owns one DEALER socket; it is not shared between threads.
"""
import logging
import time
import uuid

import zmq

from kernel import protocol
from kernel.errors import BatosError

log = logging.getLogger(__name__)


class RequestFailed(BatosError):
    """The orchestrator or a persona answered with an error; `retry` says if trying can help."""

    def __init__(self, message):
        self.message = message
        self.transient = bool(message.get("retry"))
        super().__init__(message.get("error", "request failed"))


class NoAnswer(BatosError):
    """No reply came in time. Transient: the same request id can be sent again safely."""

    transient = True


def new_request_id():
    """A client-made unique request id."""
    return uuid.uuid4().hex


class Client:
    """A DEALER connection to the orchestrator's frontend.

    `curve` (a `kernel.keys.ClientCurve`: this client's key pair and the orchestrator's public
    key) makes it a CURVE client, as remote mode requires; `kernel.keys.frontend_client`
    picks the keys of a home. Without an allowed key the orchestrator never answers and
    closes the connection, so `request` ends in `NoAnswer`; a new `Client` tries again.
    """

    def __init__(self, endpoint, context=None, timeout=120.0, curve=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            self.socket.curve_secretkey = curve.secret
            self.socket.curve_publickey = curve.public
            self.socket.curve_serverkey = curve.server_public
        self.socket.connect(endpoint)

    def request(self, payload, on_progress=None, timeout=None):
        """Send `payload` (an id is added if missing); return the "reply" message.

        Raises `RequestFailed` for an "error" reply and `NoAnswer` after `timeout` seconds.
        """
        payload = dict(payload)
        payload.setdefault("id", new_request_id())
        try:
            # never blocks: a connection the orchestrator refused (a CURVE key that is not
            # allowed) is closed for good and would block a plain send forever
            self.socket.send_multipart([protocol.CLIENT, protocol.encode(payload)],
                                       flags=zmq.NOBLOCK)
        except zmq.Again:
            raise NoAnswer(f"cannot send request {payload['id']}: the connection to "
                           f"{self.endpoint} is closed or full (in remote mode: is this "
                           "console's key allowed?)") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                raise NoAnswer(f"no answer to request {payload['id']} from {self.endpoint} "
                               f"within {timeout or self.timeout:g} s")
            frames = self.socket.recv_multipart()
            if len(frames) != 2 or frames[0] != protocol.CLIENT:
                log.warning("dropping a malformed message from the orchestrator")
                continue
            message = protocol.decode(frames[1], limit=1 << 30)
            if message.get("id") not in (payload["id"], None):
                continue  # a late answer to an earlier request on this socket
            kind = message.get("type")
            if kind == "progress":
                if on_progress:
                    on_progress(message)
                deadline = time.monotonic() + (timeout or self.timeout)  # it is alive
                continue
            if kind == "error":
                raise RequestFailed(message)
            return message

    def close(self):
        """Close the socket."""
        self.socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""The client side of BATOS/1: send a request to the orchestrator, get its reply.

Used by `batos ask`, by the console, and by workers that need another persona's service
(mandates go to BRICK). One `Client` owns one DEALER socket; it is not shared between threads.
"""
import logging
import time
import uuid

import zmq

from kernel import protocol
from kernel.errors import BatosError, Terminated

log = logging.getLogger(__name__)


class RequestFailed(BatosError):
    """The orchestrator or a persona answered with an error; `retry` says if trying can help."""

    def __init__(self, message):
        self.message = message
        self.transient = bool(message.get("retry"))
        super().__init__(message.get("error", "request failed"))


class NoAnswer(BatosError):
    """No answer came in time. Transient: the same request id can be sent again safely."""

    transient = True


class ClusterSilent(NoAnswer):
    """The orchestrator answers nothing at all — not even where a request is: it is down or
    unreachable. Transient: once it is back, the same request id can be sent again."""


class Cancelled(KeyboardInterrupt):
    """The person interrupted a request (Ctrl-C) and it was cancelled: `outcome` is the
    orchestrator's word — "withdrawn" (it never ran), "detached" (it runs to its end and its
    reply is kept in the ledger), "unknown" — or None when the orchestrator did not answer."""

    def __init__(self, request_id, outcome, persona=None):
        super().__init__(f"request {request_id} cancelled: {outcome or 'unconfirmed'}")
        self.request_id, self.outcome, self.persona = request_id, outcome, persona


def new_request_id():
    """A client-made unique request id."""
    return uuid.uuid4().hex


class Client:
    """A DEALER connection to the orchestrator's frontend.

    `curve` (a `kernel.keys.ClientCurve`: this client's key pair and the orchestrator's public
    key) makes it a CURVE client, as remote mode requires; `kernel.keys.frontend_client`
    picks the keys of a home. Without an allowed key the orchestrator never answers and
    closes the connection, so `request` ends in `NoAnswer`; a new `Client` tries again.
    `timeout` is how long one stage of a request may last (see `request`).
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
        self.stage = None  # (stage, persona) of the request in hand, as last reported

    def request(self, payload, on_progress=None, timeout=None):
        """Send `payload` (an id is added if missing); return the "reply" message.

        While it waits it tracks the request after every `HEARTBEAT_INTERVAL` of silence
        (BATOS/1: the orchestrator answers with the current stage), and sends it again —
        same id, to the persona it was routed to — only when the orchestrator says it does
        not know it. `on_progress` gets every progress note, repeated stages included.
        Raises `RequestFailed` for an "error" reply, `ClusterSilent` after
        `CLIENT_LIVENESS` seconds without a word from the orchestrator, and `NoAnswer` when
        one stage lasts longer than `timeout` seconds (default: the client's).
        """
        payload = dict(payload)
        payload.setdefault("id", new_request_id())
        try:
            return self._wait(payload, on_progress, timeout or self.timeout)
        except KeyboardInterrupt as interrupt:
            outcome = self.cancel(payload["id"])  # withdrawn, or left to finish unseen
            if isinstance(interrupt, Terminated):
                raise
            raise Cancelled(payload["id"], outcome, self.stage and self.stage[1]) from None

    def _wait(self, payload, on_progress, limit):
        """`request`'s loop: send, track, re-send when forgotten, until the final answer."""
        self._send(payload)
        heard = stage_began = time.monotonic()
        self.stage = None
        while True:
            message = self._next(payload["id"], min(heard + protocol.CLIENT_LIVENESS,
                                                    stage_began + limit))
            now = time.monotonic()
            if message is None:
                if now >= stage_began + limit:
                    raise NoAnswer(f"no answer to request {payload['id']} from "
                                   f"{self.endpoint}: {self._give_up(payload['id'], limit)}")
                if now >= heard + protocol.CLIENT_LIVENESS:
                    raise ClusterSilent(f"no answer from the orchestrator at {self.endpoint} "
                                        f"for {now - heard:.0f} s (request {payload['id']})")
                self._send({"id": payload["id"], "intent": "track"}, quietly=True)
                continue
            heard = now
            kind = message.get("type")
            if kind == "error":
                raise RequestFailed(message)
            if kind != "progress":
                return message
            stage = (message.get("stage"), message.get("persona"))
            if stage[0] == "unknown":  # the orchestrator forgot it (restarted): send again
                self._send(payload)
                continue
            if stage[0] == "routed" and stage[1]:
                payload["persona"] = stage[1]  # a re-send is not routed again
            if stage != self.stage:
                self.stage, stage_began = stage, now
            if on_progress:
                on_progress(message)

    def _give_up(self, request_id, limit):
        """Cancel a request whose stage lasted longer than `limit` s; say what happened."""
        if self.stage is None:
            return f"no word of it within {limit:g} s"
        stage, persona = self.stage
        outcome = self.cancel(request_id)
        return (f"{stage}{f' ({persona})' if persona else ''} for longer than {limit:g} s; "
                f"given up ({outcome or 'unconfirmed'})")

    def check(self, timeout=protocol.CLIENT_LIVENESS):
        """The orchestrator's `ping` answer (live and busy workers per persona), or
        `ClusterSilent` after `timeout` seconds: what a command asks before it waits on a
        cluster."""
        try:
            return self.request({"intent": "ping"}, timeout=timeout)
        except NoAnswer:
            raise ClusterSilent(f"no answer from the orchestrator at {self.endpoint} within "
                                f"{timeout:g} s") from None

    def cancel(self, request_id, timeout=protocol.CLIENT_LIVENESS):
        """Cancel request `request_id`: "withdrawn" (it will never run), "detached" (a worker
        has it; it finishes and its reply is kept in the ledger), "unknown", or None when the
        orchestrator did not answer within `timeout` seconds."""
        self._send({"id": request_id, "intent": "cancel"}, quietly=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._next(request_id, deadline)
            if message and message.get("type") == "progress" and message.get("stage") in (
                    "withdrawn", "detached", "unknown"):
                return message["stage"]
        return None

    def _send(self, payload, quietly=False):
        """Send one message without blocking: a connection the orchestrator refused (a CURVE
        key that is not allowed) is closed for good and would block a plain send forever.
        `quietly`: a message that cannot go now is left out (the caller hears silence)."""
        try:
            self.socket.send_multipart([protocol.CLIENT, protocol.encode(payload)],
                                       flags=zmq.NOBLOCK)
        except zmq.Again:
            if quietly:
                return
            raise NoAnswer(f"cannot send request {payload['id']}: the connection to "
                           f"{self.endpoint} is closed or full (in remote mode: is this "
                           "console's key allowed?)") from None

    def _next(self, request_id, deadline):
        """The next message about `request_id` before `deadline`, else None after at most one
        `HEARTBEAT_INTERVAL` of silence (messages about other ids are late answers to
        requests this socket gave up on: dropped)."""
        wait_until = min(deadline, time.monotonic() + protocol.HEARTBEAT_INTERVAL)
        while (remaining := wait_until - time.monotonic()) > 0 \
                and self.socket.poll(remaining * 1000):
            frames = self.socket.recv_multipart()
            if len(frames) != 2 or frames[0] != protocol.CLIENT:
                log.warning("dropping a malformed message from the orchestrator")
                continue
            message = protocol.decode(frames[1], limit=1 << 30)
            if message.get("id") in (request_id, None):
                return message
        return None

    def close(self):
        """Close the socket."""
        self.socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""A kernel worker: one process serving one persona's service over BATOS/1.

`batos-worker --home DIR --persona NAME` opens the Living Image as a ZEO client, loads the
persona's model on first use, registers with the orchestrator's backend and serves requests
one at a time. The request runs in a thread of its own while the main loop keeps heartbeating,
so a long generation never looks like a dead worker: llama-cpp-python releases the GIL in its
ctypes calls, and measured on 2 cores the main loop woke within 40 ms of its time during a
grammar-constrained completion (within 110 ms with two busy-loop processes beside it; see
bench/README.md). A worker that really dies has its request re-dispatched by the
orchestrator (the ledger makes the second delivery harmless). A worker that hears nothing
from the orchestrator reconnects and registers again. Each request taken and answered is one
log line, so its log shows how often a request ran.

In remote mode the worker registers as a CURVE client with its worker key (`kernel.keys`), so
it may run on another host with a home of its own (ZEO over SSL, `kernel.certs`); the first
handshake the orchestrator refuses is logged with what to check (and the one accepted after
it), since a refused worker otherwise just hears nothing: ZeroMQ gives a refused connection
up, and the worker connects again each time the orchestrator has been silent too long.
"""
import argparse
import faulthandler
import logging
import signal
import sys
import threading
import time

import zmq
import zmq.utils.monitor

from kernel import dnu, keys, limits, llm, protocol, settings
from kernel.client import Client
from kernel.errors import BatosError
from kernel.home import Home
from kernel.persona import PersonaService, RemoteWriter

log = logging.getLogger(__name__)
HANDSHAKE_EVENTS = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "failed",
                    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "failed (protocol)",
                    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "refused (authentication)"}


class Worker:
    """The worker's connection to the orchestrator and its serve loop."""

    def __init__(self, service, backend, handler, context=None, curve=None):
        self.service = service
        self.backend = backend
        self.handler = handler
        self.curve = curve  # remote mode: a kernel.keys.ClientCurve with the worker key
        self.monitor = None
        self.refusals = 0  # failed handshakes since the last one that succeeded
        self.context = context or zmq.Context.instance()
        self.outbox_endpoint = f"inproc://worker-outbox-{id(self)}"
        self.outbox = self.context.socket(zmq.PULL)
        self.outbox.bind(self.outbox_endpoint)
        self.busy = None
        self.holding = None  # the tag of the request in hand
        self.running = True
        self.socket = None

    def connect(self):
        """(Re)connect to the backend and register for the service — naming the request in
        hand, if any, which a restarted orchestrator then adopts instead of running it again.
        A reconnect first says goodbye on the old connection, so that the orchestrator does
        not count this worker twice (old identity and new) until the old one expires."""
        if self.socket is not None:
            self.send(protocol.DISCONNECT)
            self.close_socket(linger=100)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            keys.secure_client(self.socket, self.curve)
            self.monitor = self.socket.get_monitor_socket(
                sum(HANDSHAKE_EVENTS) | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.socket.connect(self.backend)
        self.send(protocol.READY, self.service.encode(), *filter(None, [self.holding]))
        self.broker_expiry = time.monotonic() + protocol.HEARTBEAT_INTERVAL * \
            protocol.HEARTBEAT_LIVENESS
        self.heartbeat_at = time.monotonic() + protocol.HEARTBEAT_INTERVAL
        log.info("registered for %s at %s", self.service, self.backend)

    def send(self, command, *body):
        """One message to the orchestrator, never waiting: one that cannot even be queued is
        dropped. That happens when the orchestrator refused the connection's handshake (ZeroMQ
        then gives the connection up) — the reconnect after its silence tries again — or
        after a thousand unanswered messages."""
        try:
            self.socket.send_multipart([protocol.WORKER, command, *body], zmq.NOBLOCK)
        except zmq.Again:
            log.debug("dropped a %s: no connection to the orchestrator can take it",
                      protocol.COMMAND_NAMES.get(command, command))

    def serve(self):
        """Serve until `stop()`."""
        self.connect()
        while self.running or self.busy is not None:  # a stop lets the current request finish
            poller = zmq.Poller()
            poller.register(self.socket, zmq.POLLIN)
            poller.register(self.outbox, zmq.POLLIN)
            if self.monitor is not None:
                poller.register(self.monitor, zmq.POLLIN)
            ready = dict(poller.poll(protocol.HEARTBEAT_INTERVAL * 1000 / 4))
            if self.monitor in ready:
                self.on_handshake(zmq.utils.monitor.recv_monitor_message(self.monitor))
            if self.socket in ready:
                self.on_message(self.socket.recv_multipart())
            if self.outbox in ready:
                self.forward(self.outbox.recv_multipart())
            now = time.monotonic()
            if now >= self.heartbeat_at:
                self.send(protocol.HEARTBEAT)
                self.heartbeat_at = now + protocol.HEARTBEAT_INTERVAL
            if now > self.broker_expiry and self.busy is None:
                log.warning("the orchestrator is silent; reconnecting")
                self.connect()
        if self.socket is not None:
            self.send(protocol.DISCONNECT)
            self.close_socket(linger=0)
        self.outbox.close(0)

    def close_socket(self, linger):
        """Close the backend connection (and its handshake monitor)."""
        if self.monitor is not None:
            self.socket.disable_monitor()
            self.monitor.close(0)
            self.monitor = None
        self.socket.close(linger=linger)

    def on_handshake(self, event):
        """A CURVE handshake with the orchestrator ended: the first refusal says what to
        check (the worker tries again every few seconds: one line per outage, not per try)."""
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if self.refusals:
                log.info("the orchestrator accepted this worker's key after %d refused "
                         "handshake(s)", self.refusals)
            self.refusals = 0
            return
        self.refusals += 1
        if self.refusals > 1:
            return
        log.warning("the orchestrator at %s %s this worker's CURVE handshake (code %s): is the "
                    "public key of this worker's key on its workers' allow-list (batos keys "
                    "allow FILE --role worker) and keys/orchestrator.key the orchestrator's own?",
                    self.backend, HANDSHAKE_EVENTS.get(event["event"], "failed"),
                    event["value"])

    def stop(self):
        """End `serve()` once the request in hand is answered; take no new one."""
        self.running = False

    def on_message(self, frames):
        """A message from the orchestrator."""
        self.broker_expiry = time.monotonic() + protocol.HEARTBEAT_INTERVAL * \
            protocol.HEARTBEAT_LIVENESS
        if len(frames) < 2 or frames[0] != protocol.WORKER:
            log.warning("dropping a malformed message from the orchestrator")
            return
        command = frames[1]
        if command == protocol.REQUEST and len(frames) == 4 and self.busy is None \
                and self.running:
            client, body = frames[2], frames[3]
            self.holding = client
            self.busy = threading.Thread(target=self.run_request, args=(client, body),
                                         name="request", daemon=True)
            self.busy.start()
        elif command == protocol.DISCONNECT:  # the orchestrator does not know us (restarted)
            self.connect()
        elif command != protocol.HEARTBEAT:
            log.warning("dropping an unexpected %r from the orchestrator", command)

    def run_request(self, client, body):
        """Handle one request in this thread; its answers go to the serve loop through an
        inproc socket, which also wakes the loop at once."""
        outbox = self.context.socket(zmq.PUSH)
        outbox.connect(self.outbox_endpoint)
        try:
            try:
                # the orchestrator checked the client's bound; its re-encoding adds a few fields
                request = protocol.decode(body, limit=limits.LIMITS.max_request_bytes + 4096)
            except protocol.ProtocolError as exc:
                message = protocol.error(None, str(exc))
            else:
                started = time.monotonic()
                log.info("took request %s (%s)", request.get("id"), request.get("intent"))
                message = self.handler(request, lambda stage, persona=None, **fields:
                                       outbox.send_multipart([
                                           protocol.PROGRESS, client,
                                           protocol.encode(protocol.progress(
                                               request.get("id"), stage,
                                               persona or self.service, **fields))]))
                log.info("answered request %s in %.1f s (%s)", request.get("id"),
                         time.monotonic() - started, message.get("type"))
            outbox.send_multipart([protocol.REPLY, client, protocol.encode(message)])
        finally:
            outbox.close()

    def forward(self, frames):
        """Send what the request thread produced; a REPLY makes the worker idle again."""
        command = frames[0]
        self.send(*frames)
        if command == protocol.REPLY:
            self.busy.join()
            self.busy = self.holding = None


def main(argv=None):
    """`batos-worker --home DIR --persona NAME`: serve in the foreground until SIGTERM."""
    from kernel.image import connect_home
    parser = argparse.ArgumentParser(prog="batos-worker", description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--persona", required=True)
    args = parser.parse_args(argv)
    faulthandler.enable()  # a crash in the model's C code leaves its cause in the log
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s {args.persona} %(name)s: "
                               "%(message)s")
    try:
        home = Home.open(args.home)
        settings.start(home)
        endpoints = home.orchestrator_endpoints
        learner_settings = dnu.learner_settings(home.config.get("dnu", {}))
        writer_name = learner_settings["writer"]
        registering = keys.worker_curve(home)  # remote mode: the worker key, for the backend
        # and a console key for asking BRICK (which the writer itself never does)
        curve = keys.client_curve(home) if args.persona != writer_name else None
        image = connect_home(home, wait_timeout=60.0, fail_fast=False,
                             client_label=f"worker-{args.persona}")
    except BatosError as exc:
        print(f"batos-worker: {exc}", file=sys.stderr)
        return 1
    writer_factory = None
    if args.persona != writer_name:
        brick = Client(keys.connect_endpoint(endpoints["frontend"]), curve=curve)
        writer_factory = lambda claim: RemoteWriter(brick, writer_name)  # noqa: E731
    service = PersonaService(args.persona, image, llm.ModelRegistry(home.config.get("models", {})),
                             learner_settings, writer_factory)
    worker = Worker(args.persona, keys.connect_endpoint(endpoints["backend"]), service.handle,
                    curve=registering)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.serve()
    finally:
        image.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

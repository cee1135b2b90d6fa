"""The orchestrator (the Conductor): the BATOS/1 broker between consoles and persona workers.

It routes, it does not reason: a request naming a persona goes to that persona's service; a
request naming none goes first to the router persona (the `orchestrator` object in the image
names it, ALFRED at genesis) as a `route` request, whose answer `{"persona": NAME}` decides
the service. Workers of a service are served least recently used; a request held by a worker
that stops heartbeating is re-dispatched; a request for a service with no live worker waits
up to `service_wait` seconds and then gets an error. It reads the image (a ZEO client) only to
know which personas exist and who routes — at most once a second, and at once for a persona
it has not seen — so a persona cloned at runtime is routable without a restart. See `kernel.protocol` for the wire format. In remote mode the frontend and
events sockets are CURVE servers that admit only allowed console keys (`kernel.keys`).
What it drops or refuses it logs through a rate limit (`kernel.ratelimit`); tests/
test_fuzz_wire.py throws thousands of generated bad frames at both sockets.
"""
import argparse
import collections
import dataclasses
import functools
import itertools
import logging
import sys
import time

import zmq

from kernel import keys, limits, protocol, supervise
from kernel.errors import BatosError
from kernel.home import Home
from kernel.ratelimit import RateLimitFilter

log = logging.getLogger(__name__)
log.addFilter(RateLimitFilter())  # junk on a socket must not flood the log

ROUTE_CLIENT = b""  # routing answers: no ZeroMQ peer can have an empty routing id
ROUTE_NUMBERS = itertools.count()
MAX_DELIVERIES = 3
ROUTES_REMEMBERED = 1000  # routing choices kept to recognise corrections
VIEW_SECONDS = 1.0  # how long the broker routes by one reading of the personas and router


@dataclasses.dataclass
class Pending:
    """A request on its way: who asked, what, since when, and how often it was handed out."""

    client: bytes
    request: dict
    queued: float
    deliveries: int = 0


@dataclasses.dataclass
class Worker:
    """A registered worker: its service, when it expires, and the request it holds."""

    identity: bytes
    service: str
    expiry: float
    current: Pending = None


@dataclasses.dataclass
class Service:
    """A persona's service: its idle workers (LRU first) and its waiting requests."""

    name: str
    waiting: collections.deque = dataclasses.field(default_factory=collections.deque)
    requests: collections.deque = dataclasses.field(default_factory=collections.deque)


class Orchestrator:
    """The broker's state and its poll loop."""

    def __init__(self, frontend, backend, events, image=None, service_wait=10.0,
                 context=None, curve=None, max_request_bytes=protocol.MAX_PAYLOAD,
                 last_words=None):
        self.context = context or zmq.Context.instance()
        # persona → the line of its workers' logs that says why one ended (None: unknown);
        # it goes into the error of a request given up on, so the person sees the cause
        self.last_words = last_words or (lambda persona: None)
        self.max_request_bytes = max_request_bytes
        # remote mode (`curve`, a kernel.keys.ServerCurve): frontend and events are CURVE
        # servers behind the allow-list; the backend stays plain (it is loopback only)
        self.gatekeeper = keys.Gatekeeper(self.context, curve.allowed_dir) if curve else None
        self.frontend = self._bind(zmq.ROUTER, frontend, curve,
                                   max_message=protocol.hard_cap(max_request_bytes))
        self.backend = self._bind(zmq.ROUTER, backend)
        self.events = self._bind(zmq.PUB, events, curve)
        self.image = image
        self.view = ("ALFRED", None)  # router and personas, as last read from the image
        self.view_expires = 0.0
        self.service_wait = service_wait
        self.services = {}
        self.workers = {}
        self.routes = {}
        self.routed = collections.OrderedDict()  # hash of a text → the persona routing chose
        self.heartbeat_at = time.monotonic() + protocol.HEARTBEAT_INTERVAL
        self.running = True

    def _bind(self, kind, endpoint, curve=None, max_message=-1):
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, max_message)  # ZeroMQ drops a peer sending more
        if curve is not None:
            keys.secure_server(socket, curve)
        if kind == zmq.ROUTER:
            socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        socket.bind(endpoint)
        return socket

    # -- the loop ---------------------------------------------------------------------------

    def serve(self):
        """Serve until `stop()`; no message, however malformed, ends the loop."""
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        while self.running:
            ready = dict(poller.poll(protocol.HEARTBEAT_INTERVAL * 1000 / 4))
            if self.backend in ready:
                self._safely(self.on_worker, self.backend.recv_multipart())
            if self.frontend in ready:
                frames = self.receive_client()
                if frames is not None:
                    self._safely(self.on_client, frames)
            try:
                self.tick()
            except Exception:  # as for messages: a bug must not stop the broker
                log.exception("failed to run the periodic duties")

    def receive_client(self):
        """One frontend message; None (dropped, unanswered) in remote mode when its key is
        no longer on the allow-list — revoking a key silences open connections too."""
        if self.gatekeeper is None:
            return self.frontend.recv_multipart()
        frames = self.frontend.recv_multipart(copy=False)
        if not self.gatekeeper.permits(frames[-1]):
            log.warning("dropping a request from a console key that is not allowed")
            return None
        return [frame.bytes for frame in frames]

    def _safely(self, handler, frames):
        try:
            handler(frames)
        except Exception:  # a bug on one message must not stop the broker
            log.exception("failed to handle a message of %d frames", len(frames))

    def stop(self):
        """End `serve()` after the current iteration."""
        self.running = False

    def tick(self):
        """Heartbeats, dead workers, and requests that waited too long."""
        now = time.monotonic()
        if self.gatekeeper is not None:
            self.gatekeeper.refresh()
        for worker in list(self.workers.values()):
            if worker.expiry < now:
                log.warning("worker %s of %s is silent; dropping it", worker.identity.hex(),
                            worker.service)
                self.drop_worker(worker)
        if now >= self.heartbeat_at:
            for worker in self.workers.values():
                self.send_worker(worker.identity, protocol.HEARTBEAT)
            self.heartbeat_at = now + protocol.HEARTBEAT_INTERVAL
        serving = {w.service for w in self.workers.values()}
        for service in self.services.values():
            while service.requests and service.requests[0].queued + self.service_wait < now \
                    and service.name not in serving:
                pending = service.requests.popleft()
                self.answer(pending.client, protocol.error(
                    pending.request.get("id"), f"no live worker for persona {service.name} "
                    f"within {self.service_wait:g} s{self._why(service.name)}", retry=True))

    # -- clients ----------------------------------------------------------------------------

    def on_client(self, frames):
        """A frontend message: validate, then route or dispatch."""
        if len(frames) < 2:
            log.warning("dropping a frontend message without content")
            return
        client = frames[0]
        if len(frames) != 3 or frames[1] != protocol.CLIENT:
            log.info("answering a malformed request of %d frames from client %s",
                     len(frames) - 1, client.hex())
            self.answer(client, protocol.error(None, "malformed request: expected the frames "
                                                     "[BATOS/C1, request-json]"))
            return
        try:
            request = protocol.validate_request(protocol.decode(frames[2],
                                                                self.max_request_bytes))
        except protocol.ProtocolError as exc:
            log.info("answering a malformed request from client %s: %s", client.hex(), exc)
            self.answer(client, protocol.error(None, f"malformed request: {exc}"))
            return
        if request["intent"] == "ping":
            self.answer(client, protocol.reply(request["id"], services=self.live_workers()))
            return
        persona = request.get("persona")
        if persona:
            was = self.routed.get(hash(request.get("text")))
            if was and was != persona and request["intent"] == "chat":
                request.setdefault("corrects", was)  # a person overrides the router
            self.to_persona(client, request, persona)
        else:
            self.route(client, request)

    def route(self, client, request):
        """Ask the router persona which persona should take `request`."""
        router, known = self.image_view()
        token = f"{request['id']}#route{next(ROUTE_NUMBERS)}"  # clients may share an id
        self.routes[token] = (client, request, known)
        self.enqueue(router, ROUTE_CLIENT, {**request, "intent": "route", "persona": router,
                                            "id": token})

    def to_persona(self, client, request, persona, known=None):
        """Send `request` to `persona`'s service, if that persona exists (`known`: the names
        already read for this request, else read now)."""
        if known is None:
            known = self.image_view()[1]
        if known is not None and persona not in known:
            known = self.image_view(fresh=True)[1]  # made since the last read?
        if known is not None and persona not in known:
            self.answer(client, protocol.error(request["id"], f"unknown persona {persona!r} "
                                                              f"(known: {', '.join(known)})"))
            return
        self.enqueue(persona, client, request)

    def enqueue(self, name, client, request):
        """Queue a request on a service and dispatch what can be dispatched."""
        service = self.services.setdefault(name, Service(name))
        service.requests.append(Pending(client, request, time.monotonic()))
        self.dispatch(service)

    def dispatch(self, service):
        """Hand waiting requests to idle workers, least recently used first."""
        while service.waiting and service.requests:
            worker = self.workers[service.waiting.popleft()]
            pending = service.requests.popleft()
            pending.deliveries += 1
            worker.current = pending
            self.send_worker(worker.identity, protocol.REQUEST, pending.client,
                             protocol.encode(pending.request))
            if pending.deliveries > 1 and pending.client != ROUTE_CLIENT:
                self.answer(pending.client, protocol.progress(
                    pending.request.get("id"), "redelivered", service.name,
                    delivery=pending.deliveries))

    def answer(self, client, message):
        """Send a message to a client (or, for routing answers, handle it here)."""
        if client == ROUTE_CLIENT:
            self.on_route_answer(message)
            return
        self.frontend.send_multipart([client, protocol.CLIENT, protocol.encode(message)])

    def on_route_answer(self, message):
        """The router persona answered: send the original request to its choice."""
        pending = self.routes.pop(message.get("id"), None)
        if pending is None:
            return
        client, request, known = pending
        persona = message.get("persona")
        if message.get("type") != "reply" or not persona or not isinstance(persona, str):
            self.answer(client, protocol.error(request["id"], "routing failed: "
                                               f"{message.get('error') or 'no persona chosen'}",
                                               retry=bool(message.get("retry"))))
            return
        self.answer(client, protocol.progress(request["id"], "routed", persona))
        self.remember_route(request.get("text"), persona)
        self.to_persona(client, {**request, "persona": persona}, persona, known)

    def remember_route(self, text, persona):
        """Keep the newest routing choices, so that a re-send to another persona is seen as
        a correction (`kernel.routing.learn`)."""
        if text:
            self.routed[hash(text)] = persona
            self.routed.move_to_end(hash(text))
            while len(self.routed) > ROUTES_REMEMBERED:
                self.routed.popitem(last=False)

    # -- workers ----------------------------------------------------------------------------

    def on_worker(self, frames):
        """A backend message from a worker."""
        if len(frames) < 3 or frames[1] != protocol.WORKER:
            log.warning("dropping a malformed backend message of %d frames", len(frames))
            return
        identity, command, body = frames[0], frames[2], frames[3:]
        worker = self.workers.get(identity)
        if worker is not None:
            worker.expiry = time.monotonic() + protocol.HEARTBEAT_INTERVAL * \
                protocol.HEARTBEAT_LIVENESS
        if command == protocol.READY and len(body) == 1:
            self.register(identity, body[0].decode("utf-8", "replace"))
        elif worker is None:
            self.send_worker(identity, protocol.DISCONNECT)  # unknown: register first
        elif command in (protocol.REPLY, protocol.PROGRESS) and len(body) == 2:
            self.on_answer(worker, command, body[0], body[1])
        elif command == protocol.HEARTBEAT:
            pass
        elif command == protocol.DISCONNECT:
            self.drop_worker(worker)
        else:
            log.warning("dropping an unknown command %r from worker %s", command,
                        identity.hex())

    def register(self, identity, name):
        """A worker is ready for service `name` (again, after any reconnect)."""
        known = self.image_view()[1]
        if known is not None and name not in known:
            known = self.image_view(fresh=True)[1]
        if not name or len(name) > 64 or (known is not None and name not in known):
            log.warning("refusing a registration from worker %s for service %r (not a "
                        "persona of the image)", identity.hex(), name)
            return
        old = self.workers.get(identity)
        if old is not None:
            self.drop_worker(old)
        service = self.services.setdefault(name, Service(name))
        self.workers[identity] = Worker(identity, name, time.monotonic()
                                        + protocol.HEARTBEAT_INTERVAL
                                        * protocol.HEARTBEAT_LIVENESS)
        service.waiting.append(identity)
        self.publish({"type": "worker", "service": name, "state": "ready"})
        self.dispatch(service)

    def on_answer(self, worker, command, client, body):
        """A worker's REPLY (it is idle again) or PROGRESS for the request it holds; one
        for any other client is dropped: a worker answers only what it was given."""
        pending = worker.current
        if pending is None or client != pending.client:
            log.warning("dropping a %s from worker %s of %s for a request it does not hold",
                        protocol.COMMAND_NAMES[command], worker.identity.hex(), worker.service)
            return
        try:
            message = protocol.decode(body, limit=1 << 30)
        except protocol.ProtocolError as exc:
            message = protocol.error(None, f"the {worker.service} worker sent a malformed "
                                           f"answer: {exc}")
        message["id"] = pending.request.get("id")  # whatever it says, it answers this one
        if command == protocol.PROGRESS:
            if client != ROUTE_CLIENT:
                self.answer(client, message)
            return
        worker.current = None  # idle again before relaying, which may fail
        service = self.services[worker.service]
        service.waiting.append(worker.identity)
        try:
            events = message.pop("events", None)
            for event in events if isinstance(events, list) else ():
                self.publish(event)
            self.answer(client, message)
        finally:
            self.dispatch(service)

    def drop_worker(self, worker):
        """Forget a worker; re-dispatch the request it held."""
        self.workers.pop(worker.identity, None)
        service = self.services.get(worker.service)
        if service is None:
            return
        if worker.identity in service.waiting:
            service.waiting.remove(worker.identity)
        pending, worker.current = worker.current, None
        if pending is not None and pending.deliveries >= MAX_DELIVERIES:
            log.error("request %s was lost with %d workers; giving up on it",
                      pending.request.get("id"), pending.deliveries)
            self.answer(pending.client, protocol.error(
                pending.request.get("id"), f"request lost: {pending.deliveries} {worker.service}"
                f" workers died while handling it{self._why(worker.service)}"))
        elif pending is not None:
            log.warning("re-dispatching request %s held by a lost %s worker",
                        pending.request.get("id"), worker.service)
            pending.queued = time.monotonic()  # the wait for a live worker starts again
            service.requests.appendleft(pending)
        self.publish({"type": "worker", "service": worker.service, "state": "lost"})
        self.dispatch(service)

    def _why(self, persona):
        """'; last log line: …' for an error about `persona`'s workers, when one is known."""
        try:
            words = self.last_words(persona)
        except Exception:  # a log that cannot be read must not cost the client its answer
            log.exception("cannot read the last log line of %s's workers", persona)
            words = None
        return f"; last log line: {words}" if words else ""

    def send_worker(self, identity, command, *body):
        """One message to one worker."""
        self.backend.send_multipart([identity, protocol.WORKER, command, *body])

    def publish(self, event):
        """Publish an event to every console."""
        self.events.send_multipart([protocol.EVENT, protocol.encode(event)])

    # -- what the image says ----------------------------------------------------------------

    def image_view(self, fresh=False):
        """The router persona and the personas that exist, as the image says: read at most
        every `VIEW_SECONDS` (a persona not in the view is looked for again at once, `fresh`).

        The broker never waits for the image: while the ZEO server is away it routes by the
        last view it read (ALFRED and None — any persona — before the first), and the workers
        retry their own transactions until the server is back.
        """
        if not fresh and time.monotonic() < self.view_expires:
            return self.view
        if self.image is None or not self.image.connected:
            if self.image is not None:
                log.warning("the image is unavailable; routing by the last view")
            return self.view
        try:
            self.view = self.image.run(lambda lobby: (
                getattr(lobby.orchestrator, "router", "ALFRED"),
                sorted(lobby.personas.slot_names())), attempts=1)
            self.view_expires = time.monotonic() + VIEW_SECONDS
        except BatosError as exc:
            if not exc.transient:
                raise
            log.warning("the image could not be read (%s); routing by the last view", exc)
        return self.view

    def live_workers(self):
        """Service name → live workers, for `ping` and `batos status`."""
        counts = collections.Counter(w.service for w in self.workers.values())
        return {name: counts.get(name, 0) for name in sorted(self.services)}

    def close(self):
        """Close the sockets."""
        for socket in (self.frontend, self.backend, self.events):
            socket.close(0)
        if self.gatekeeper is not None:
            self.gatekeeper.stop()


def main(argv=None):
    """`batos-orchestrator --home DIR`: serve in the foreground until SIGTERM."""
    import signal

    from kernel.image import connect_home
    parser = argparse.ArgumentParser(prog="batos-orchestrator", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        home = Home.open(args.home)
        endpoints = home.orchestrator_endpoints
        curve = keys.server_curve(home)  # refuses exposed endpoints; None unless remote
        bounds = limits.configure(**home.size_limits)
        image = connect_home(home, wait_timeout=60.0, fail_fast=False,
                             client_label="orchestrator")
        broker = Orchestrator(endpoints["frontend"], endpoints["backend"], endpoints["events"],
                              image=image, service_wait=float(home.setting(
                                  "orchestrator", "service_wait", default=10.0)),
                              curve=curve, max_request_bytes=bounds.max_request_bytes,
                              last_words=functools.partial(supervise.worker_last_words, home))
    except (BatosError, zmq.ZMQError) as exc:
        print(f"batos-orchestrator: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    log.info("orchestrator serving %s%s", endpoints,
             f" (remote mode: CURVE, allow-list in {curve.allowed_dir})" if curve else "")
    try:
        broker.serve()
    finally:
        broker.close()
        image.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

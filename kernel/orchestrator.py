"""The orchestrator (the Conductor): the BATOS/1 broker between consoles and persona workers.

It routes, it does not reason: a request naming a persona goes to that persona's service; a
request naming none goes first to the router persona (the `orchestrator` object in the image
names it, ALFRED at genesis) as a `route` request, whose answer `{"persona": NAME}` decides
the service. Workers of a service are served least recently used; a request held by a worker
that stops heartbeating is re-dispatched; a request for a service with no live worker waits
up to `service_wait` seconds and then gets an error. A request in flight is one request
(`Flight`): its id sent again, tracked or cancelled reaches the same flight, never a second
run. It reads the image (a ZEO client) only to know which personas exist and who routes —
at most once a second, and at once for a persona it has not seen — so a persona cloned at
runtime is routable without a restart. See `kernel.protocol` for the wire format. In remote
mode all three sockets are CURVE servers: the frontend and events admit only allowed console
keys, the backend only allowed worker keys, so workers may run on other hosts; a message from
a key revoked since its connection opened is dropped, and a worker whose key was revoked is
dropped with it, its request re-dispatched (`kernel.keys`).
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

from kernel import keys, protocol, settings, supervise
from kernel.errors import BatosError
from kernel.home import Home
from kernel.ratelimit import RateLimitFilter

log = logging.getLogger(__name__)
log.addFilter(RateLimitFilter())  # junk on a socket must not flood the log

ROUTE_NUMBERS = itertools.count()
MAX_DELIVERIES = 3
ROUTES_REMEMBERED = 1000  # routing choices kept to recognise corrections
VIEW_SECONDS = 1.0  # how long the broker routes by one reading of the personas and router
MAX_BURST = 1000  # messages read from one socket before the broker looks at its duties
STALL_SECONDS = 2 * protocol.HEARTBEAT_INTERVAL  # a turn of the loop this long: held up
ANSWERED_KEPT = 10000  # request ids remembered with the persona that answered them


@dataclasses.dataclass
class Flight:
    """A client's request from its arrival to its final answer: whom the answer goes to now
    (the client that sent or tracked its id last; None once cancelled), how far it got, and
    whether a worker has started it (then its effects happen whatever the client does)."""

    request: dict
    client: bytes = None
    stage: str = "queued"
    persona: str = None
    started: bool = False

    @property
    def id(self):
        """The client's request id."""
        return self.request["id"]


@dataclasses.dataclass
class Pending:
    """What a service's queue or worker holds for a flight: its request, or the question which
    persona should take it (`route`, with the personas `known` when it was asked), since when
    it waits, and how often it was handed out."""

    flight: Flight
    request: dict
    queued: float
    deliveries: int = 0
    route: bool = False
    known: list = None

    @property
    def tag(self):
        """The frame a worker gets with the request and answers with: its own id."""
        return self.request["id"].encode()


@dataclasses.dataclass
class Worker:
    """A registered worker: its service, when it was last heard of, the request it holds."""

    identity: bytes
    service: str
    heard: float
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
        # remote mode (`curve`, a kernel.keys.ServerCurve): every socket is a CURVE server
        # behind the allow-list of its role — consoles on frontend and events, workers on
        # the backend
        self.gatekeeper = keys.Gatekeeper(self.context, curve.allowed_dirs) if curve else None
        self.frontend = self._bind(zmq.ROUTER, frontend, curve,
                                   max_message=protocol.hard_cap(max_request_bytes))
        self.backend = self._bind(zmq.ROUTER, backend, curve, role=keys.WORKER)
        self.events = self._bind(zmq.PUB, events, curve)
        self.image = image
        self.view = ("ALFRED", None)  # router and personas, as last read from the image
        self.view_expires = 0.0
        self.service_wait = service_wait
        self.services = {}
        self.workers = {}
        self.flights = {}  # request id → Flight, from arrival to final answer
        self.answered = collections.OrderedDict()  # request id → persona, newest last
        self.routed = collections.OrderedDict()  # hash of a text → the persona routing chose
        self.heartbeat_at = time.monotonic() + protocol.HEARTBEAT_INTERVAL
        self.turned = self.resumed = time.monotonic()  # the loop's last turn; last stall's end
        self.running = True

    def _bind(self, kind, endpoint, curve=None, max_message=-1, role=keys.CONSOLE):
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, max_message)  # ZeroMQ drops a peer sending more
        if curve is not None:
            keys.secure_server(socket, curve, role)
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
            poller.poll(protocol.HEARTBEAT_INTERVAL * 1000 / 4)
            self.note_stall()
            self.drain_workers()
            for _ in range(MAX_BURST):
                try:
                    frames = self.receive_client()
                except zmq.Again:
                    break
                if frames is not None:
                    self._safely(self.on_client, frames)
            try:
                self.tick()
            except Exception:  # as for messages: a bug must not stop the broker
                log.exception("failed to run the periodic duties")

    def note_stall(self):
        """Remember when the broker last came back from being held up itself (SIGSTOP, a
        starved CPU): what its workers sent meanwhile may still be on its way through
        ZeroMQ's I/O thread, which resumes on its own schedule, so no worker's silence is
        counted from before then."""
        now = time.monotonic()
        if now - self.turned > STALL_SECONDS:
            log.warning("the broker itself was held up for %.1f s", now - self.turned)
            self.resumed = now
        self.turned = now

    def silent(self, worker, now):
        """Whether `worker` has been silent for the liveness window, the broker's own stall
        not counted."""
        return max(worker.heard, self.resumed) \
            + protocol.HEARTBEAT_INTERVAL * protocol.HEARTBEAT_LIVENESS < now

    def drain_workers(self):
        """Handle every backend message already waiting (at most `MAX_BURST`); True when none
        is left — only then is a worker's silence its own, not the broker's backlog."""
        for _ in range(MAX_BURST):
            try:
                frames, permitted = self.receive(self.backend, keys.WORKER)
            except zmq.Again:
                return True
            self._safely(self.on_worker if permitted else self.on_revoked_worker, frames)
        return False

    def receive(self, socket, role):
        """One waiting message of `socket` (`zmq.Again` if none) and whether its CURVE key is
        on the allow-list of `role` now (always, off remote mode) — revoking a key silences
        open connections too."""
        if self.gatekeeper is None:
            return socket.recv_multipart(zmq.NOBLOCK), True
        frames = socket.recv_multipart(zmq.NOBLOCK, copy=False)
        return [frame.bytes for frame in frames], self.gatekeeper.permits(frames[-1], role)

    def receive_client(self):
        """One waiting frontend message (`zmq.Again` if none); None (dropped, unanswered) in
        remote mode when its key is no longer on the consoles' allow-list."""
        frames, permitted = self.receive(self.frontend, keys.CONSOLE)
        if not permitted:
            log.warning("dropping a request from a console key that is not allowed")
            return None
        return frames

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
        self.drop_silent_workers()
        if now >= self.heartbeat_at:
            for worker in self.workers.values():
                self.send_worker(worker.identity, protocol.HEARTBEAT)
            self.heartbeat_at = now + protocol.HEARTBEAT_INTERVAL
        serving = {w.service for w in self.workers.values()}
        for service in self.services.values():
            while service.requests and service.requests[0].queued + self.service_wait < now \
                    and service.name not in serving:
                pending = service.requests.popleft()
                self.fail(pending, protocol.error(
                    pending.request.get("id"), f"no live worker for persona {service.name} "
                    f"within {self.service_wait:g} s{self._why(service.name)}", retry=True))

    def drop_silent_workers(self):
        """Drop the workers silent for the liveness window — judged after reading what they
        sent meanwhile, so a broker that was itself held up drops nobody."""
        if not any(self.silent(w, time.monotonic()) for w in self.workers.values()):
            return
        if not self.drain_workers():
            return  # a backlog still waits: judge once it is read
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if self.silent(worker, now):
                log.warning("worker %s of %s is silent%s; dropping it", worker.identity.hex(),
                            worker.service, " while holding a request" if worker.current
                            else "")
                self.drop_worker(worker)

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
        intent, request_id = request["intent"], request["id"]
        if intent in protocol.BROKER_INTENTS:  # answered here, by the method of its name
            getattr(self, intent)(client, request_id)
        elif request_id in self.flights:  # sent again while in flight: the same request
            self.attach(self.flights[request_id], client, request)
        else:
            self.take_off(client, request)

    # -- flights ----------------------------------------------------------------------------

    def take_off(self, client, request):
        """A new request: to the persona it names (or that answered its id before, whose
        ledger replays it), else to the router first."""
        flight = self.flights[request["id"]] = Flight(request, client)
        if request.get("persona") and request["intent"] == "chat":
            was = self.routed.get(hash(request.get("text")))
            if was and was != request["persona"]:
                request.setdefault("corrects", was)  # a person overrides the router
        persona = request.get("persona") or self.answered.get(request["id"])
        if persona:
            self.to_persona(flight, persona)
        else:
            self.route(flight)

    def attach(self, flight, client, request=None):
        """`client` now waits for `flight`: it gets the current stage at once, the answer
        later. A flight adopted from a worker learns its request from a re-send."""
        flight.client = client
        if request is not None and "intent" not in flight.request:
            flight.request = request
        self.tell(flight, protocol.progress(flight.id, flight.stage, flight.persona))

    def ping(self, client, request_id):
        """Which personas have live workers, and how many of them are busy."""
        self.answer(client, protocol.reply(request_id, services=self.live_workers(),
                                           busy=self.busy_workers()))

    def track(self, client, request_id):
        """Where is `request_id`? Attach the asker, or say the id is unknown."""
        flight = self.flights.get(request_id)
        if flight is None:
            self.answer(client, protocol.progress(request_id, "unknown"))
        else:
            self.attach(flight, client)

    def cancel(self, client, request_id):
        """Withdraw a request no worker has started; detach the client of a started one (it
        finishes, and its reply is kept in the ledger)."""
        flight = self.flights.get(request_id)
        if flight is None:
            stage = "unknown"
        elif flight.started:
            flight.client, stage = None, "detached"
        else:
            del self.flights[request_id]
            self.unqueue(flight)
            stage = "withdrawn"
        log.info("cancel of request %s: %s", request_id, stage)
        self.answer(client, protocol.progress(request_id, stage,
                                              flight.persona if flight else None))

    def unqueue(self, flight):
        """Take what waits for `flight` off every service's queue (its route question too)."""
        for service in self.services.values():
            service.requests = collections.deque(
                p for p in service.requests if p.flight is not flight)

    def finish(self, flight, message, persona=None):
        """The final answer of `flight` (from `persona`'s worker, if one answered): to its
        client, if any; the id is remembered with the persona for a later re-send."""
        if self.flights.get(flight.id) is flight:
            del self.flights[flight.id]
        if persona is not None and message.get("type") == "reply":
            self.answered[flight.id] = persona
            self.answered.move_to_end(flight.id)
            if len(self.answered) > ANSWERED_KEPT:
                self.answered.popitem(last=False)
        self.tell(flight, {**message, "id": flight.id})

    def tell(self, flight, message):
        """A message for the client waiting for `flight` (none once it was cancelled)."""
        if flight.client is not None:
            self.answer(flight.client, message)

    def fail(self, pending, message):
        """An error instead of an answer for what `pending` held."""
        if pending.route:
            self.on_route_answer(pending, message)
        else:
            self.finish(pending.flight, message)

    def route(self, flight):
        """Ask the router persona which persona should take `flight`'s request."""
        router, known = self.image_view()
        flight.stage, flight.persona = "routing", router
        token = f"{flight.id}#route{next(ROUTE_NUMBERS)}"  # each route question is its own
        self.enqueue(router, Pending(flight, {**flight.request, "intent": "route",
                                              "persona": router, "id": token},
                                     time.monotonic(), route=True, known=known))

    def to_persona(self, flight, persona, known=None):
        """Send `flight`'s request to `persona`'s service, if that persona exists (`known`:
        the names already read for this request, else read now)."""
        if known is None:
            known = self.image_view()[1]
        if known is not None and persona not in known:
            known = self.image_view(fresh=True)[1]  # made since the last read?
        if known is not None and persona not in known:
            self.finish(flight, protocol.error(flight.id, f"unknown persona {persona!r} "
                                                          f"(known: {', '.join(known)})"))
            return
        flight.stage, flight.persona = "queued", persona
        self.enqueue(persona, Pending(flight, flight.request, time.monotonic()))

    def enqueue(self, name, pending):
        """Queue a request on a service and dispatch what can be dispatched."""
        service = self.services.setdefault(name, Service(name))
        service.requests.append(pending)
        self.dispatch(service)

    def dispatch(self, service):
        """Hand waiting requests to idle workers, least recently used first."""
        while service.waiting and service.requests:
            worker = self.workers[service.waiting.popleft()]
            pending = service.requests.popleft()
            pending.deliveries += 1
            worker.current = pending
            self.send_worker(worker.identity, protocol.REQUEST, pending.tag,
                             protocol.encode(pending.request))
            if pending.route:
                continue
            flight = pending.flight
            flight.started, flight.stage, flight.persona = True, "working", service.name
            log.info("request %s to a %s worker (delivery %d)", flight.id, service.name,
                     pending.deliveries)
            if pending.deliveries > 1:
                self.tell(flight, protocol.progress(flight.id, "redelivered", service.name,
                                                    delivery=pending.deliveries))

    def answer(self, client, message):
        """Send a message to a client."""
        self.frontend.send_multipart([client, protocol.CLIENT, protocol.encode(message)])

    def on_route_answer(self, pending, message):
        """The router persona answered: send the request to its choice (unless it was
        withdrawn or adopted from a worker meanwhile)."""
        flight = pending.flight
        if self.flights.get(flight.id) is not flight or flight.started:
            return
        persona = message.get("persona")
        if message.get("type") != "reply" or not persona or not isinstance(persona, str):
            self.finish(flight, protocol.error(flight.id, "routing failed: "
                                               f"{message.get('error') or 'no persona chosen'}",
                                               retry=bool(message.get("retry"))))
            return
        self.tell(flight, protocol.progress(flight.id, "routed", persona))
        self.remember_route(flight.request.get("text"), persona)
        flight.request = {**flight.request, "persona": persona}
        self.to_persona(flight, persona, pending.known)

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
            self.heard(worker)
        if command == protocol.READY and len(body) in (1, 2):
            self.register(identity, body[0].decode("utf-8", "replace"), *body[1:])
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

    def on_revoked_worker(self, frames):
        """A backend message from a worker key no longer allowed: dropped unanswered, and the
        worker with it (its request is re-dispatched), so revoking a worker key stops it."""
        worker = self.workers.get(frames[0])
        log.warning("dropping a message from a worker key that is not allowed%s",
                    f"; dropping worker {worker.identity.hex()} of {worker.service}"
                    if worker else "")
        if worker is not None:
            self.drop_worker(worker)

    def heard(self, worker):
        """A message from `worker`: alive until the liveness window passes again. A gap of
        more than two heartbeats since its last message read is logged (the broker's own
        stalls count too; bench/consoles.py reports the longest)."""
        now = time.monotonic()
        if now - worker.heard > 2 * protocol.HEARTBEAT_INTERVAL:
            log.info("no message from worker %s of %s read for %.1f s%s", worker.identity.hex(),
                     worker.service, now - worker.heard,
                     " (holding a request)" if worker.current else "")
        worker.heard = now

    def register(self, identity, name, held=None):
        """A worker is ready for service `name` (again, after any reconnect), or, with the
        tag of a request it `held` when it registered, busy with that request."""
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
        worker = self.workers[identity] = Worker(identity, name, time.monotonic())
        if held is None:
            service.waiting.append(identity)
        else:
            worker.current = self.adopt(service, held.decode("utf-8", "replace"))
        self.publish({"type": "worker", "service": name, "state": "ready"})
        self.dispatch(service)

    def adopt(self, service, request_id):
        """The `Pending` of a request a registering worker already holds: its flight, taken
        off the queue if the client sent it again first; else a flight of its own that a
        client's re-send or track attaches to — never a second run."""
        flight = self.flights.get(request_id)
        if flight is None or flight.started:  # unknown, or run by another worker too
            flight = Flight({"id": request_id})
            self.flights.setdefault(request_id, flight)
        else:
            self.unqueue(flight)
        pending = Pending(flight, flight.request, time.monotonic(), deliveries=1)
        flight.started, flight.stage, flight.persona = True, "working", service.name
        log.info("request %s adopted from a %s worker that registered holding it", request_id,
                 service.name)
        return pending

    def on_answer(self, worker, command, tag, body):
        """A worker's REPLY (it is idle again) or PROGRESS for the request it holds; one
        for anything else is dropped: a worker answers only what it was given."""
        pending = worker.current
        if pending is None or tag != pending.tag:
            log.warning("dropping a %s from worker %s of %s for a request it does not hold",
                        protocol.COMMAND_NAMES[command], worker.identity.hex(), worker.service)
            return
        try:
            message = protocol.decode(body, limit=1 << 30)
        except protocol.ProtocolError as exc:
            message = protocol.error(None, f"the {worker.service} worker sent a malformed "
                                           f"answer: {exc}")
        message["id"] = pending.request.get("id")  # whatever it says, it answers this one
        flight = pending.flight
        if command == protocol.PROGRESS:
            if not pending.route:
                if message.get("stage") != "reply":  # a piece of reply text is no stage
                    flight.stage, flight.persona = message.get("stage"), message.get("persona")
                self.tell(flight, message)
            return
        worker.current = None  # idle again before relaying, which may fail
        service = self.services[worker.service]
        service.waiting.append(worker.identity)
        try:
            events = message.pop("events", None)
            for event in events if isinstance(events, list) else ():
                self.publish(event)
            if pending.route:
                self.on_route_answer(pending, message)
            else:
                self.finish(flight, message, worker.service)
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
            self.fail(pending, protocol.error(
                pending.request.get("id"), f"request lost: {pending.deliveries} {worker.service}"
                f" workers died while handling it{self._why(worker.service)}"))
        elif pending is not None and "intent" not in pending.flight.request:
            self.fail(pending, protocol.error(  # adopted; nobody sent it since: no request
                pending.request.get("id"), f"request lost: the {worker.service} worker holding "
                "it died; send it again", retry=True))
        elif pending is not None:
            log.warning("re-dispatching request %s held by a lost %s worker",
                        pending.request.get("id"), worker.service)
            pending.queued = time.monotonic()  # the wait for a live worker starts again
            if not pending.route:
                pending.flight.stage, pending.request = "queued", pending.flight.request
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

    def busy_workers(self):
        """Service name → live workers holding a request (busy, not dead), for `ping`."""
        counts = collections.Counter(w.service for w in self.workers.values() if w.current)
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
        bounds = settings.start(home).sizes
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
             f" (remote mode: CURVE, allow-lists in {curve.allowed_dirs[keys.CONSOLE]} and "
             f"{curve.allowed_dirs[keys.WORKER]})" if curve else "")
    try:
        broker.serve()
    finally:
        broker.close()
        image.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

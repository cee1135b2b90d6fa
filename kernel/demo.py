"""The `make run` demonstration (`batos awaken`): what BAT OS does, shown on a fresh cluster.

`batos awaken` (kernel/cli.py) brings a home's cluster up and shows the lobby; then this module
makes a rectangle with no methods and sends, through the orchestrator, the requests that show
the living image at work — BRICK learning a method it was never given (with and without an
expectation), ROBIN calling what BRICK learned, ALFRED routing a question — printing each
answer with who gave it, what was learned and every stage on the way.
"""
import json
import sys

from kernel.client import NoAnswer, RequestFailed, new_request_id

DEMO_SESSION = "awaken-demo"  # the console opened after the demo has a session of its own


def make_demo_rect(lobby):
    """A rectangle to teach: width 3, height 4, and no methods."""
    if not lobby.responds_to("rect"):
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect._label = "rect"


def demonstrate(client):
    """Requests through the orchestrator, each printed with who answered and what was learned."""
    steps = [
        ("BRICK, send rect area, expecting 12 (a message rect does not understand)",
         {"intent": "send", "persona": "BRICK", "target": "rect", "selector": "area",
          "expect": 12}),
        ("BRICK, send rect perimeter, expecting nothing (final because the image's own "
         "frame.perimeter answers it over the same slots; a guess would be provisional)",
         {"intent": "send", "persona": "BRICK", "target": "rect", "selector": "perimeter"}),
        ("ROBIN, send rect area (learned by BRICK, called by another worker)",
         {"intent": "send", "persona": "ROBIN", "target": "rect", "selector": "area"}),
        ("a question with no persona named (ALFRED routes it)",
         {"intent": "chat", "text": "Who should I ask to remember my birthday?"}),
    ]
    for title, payload in steps:
        print(f"\n> {title}")
        try:
            message = client.request({"id": new_request_id(), "session": DEMO_SESSION, **payload},
                                     on_progress=ProgressLines())
        except (RequestFailed, NoAnswer) as exc:
            print(f"  error: {exc}")
            continue
        print(f"  {message.get('persona')}: result {json.dumps(message.get('result'))}"
              + (f", reply {message['reply']!r}" if message.get("reply") else ""))
        for learned in message.get("learned", []):
            kind = " (PROVISIONAL: batos confirm makes it final)" \
                if learned.get("provisional") else ""
            print(f"  learned {learned['target']}.{learned['selector']} in "
                  f"{learned['attempts']} attempt(s){kind}:")
            for line in (learned.get("source") or "").rstrip().splitlines():
                print(f"    | {line}")


class ProgressLines:
    """Prints a request's progress notes, each stage once (a method's candidates pass audit
    and trial one after another), and a line for each time the request was handed out anew
    because the worker holding it died — never the same line over and over."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.seen = set()

    def __call__(self, message):
        stage, persona = message.get("stage"), message.get("persona")
        if stage == "reply":  # pieces of the reply text: the reply itself is printed whole
            return
        if stage == "redelivered":
            print(f"  … a {persona} worker died holding the request; handed out again "
                  f"(delivery {message.get('delivery')})", file=self.out, flush=True)
        elif (stage, persona) not in self.seen:
            self.seen.add((stage, persona))
            print(f"  … {stage} ({persona})", file=self.out, flush=True)

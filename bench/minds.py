"""Benchmark: the minds with the real default model on a real cluster, on held-out cases.

A fresh home's cluster comes up under supervisord (ZEO server, orchestrator, one worker per
persona, the configured GGUF model). The cases of `bench/minds_cases.py` — written before any
tuning and kept apart from the examples the code uses — then run through the orchestrator as a
person's requests do:
  routing     ALFRED's `route` answer against the persona each case is meant for;
  chats       each sent to its persona: an error reply is a failure (every chat gets a reply);
  memory      a fact told in one session, a question about it asked in another (both routed):
              the reply must hold the fact's words; questions about what was never told must
              not be answered as if remembered;
  objects     plain-words requests on objects made for them (routed), checked in the image;
  translator  the console's translator on its own model, grounded in the lobby's names as
              the console reads them, against the intended payload.
It prints the rate per category, p50/p90 of a routing decision and of a chat's first streamed
piece of text and whole reply, and ends with one JSON line of the goals (issue 13).
`--only routing,chats,…` runs some categories.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minds_cases as cases  # noqa: E402
from console.translator import Translator  # noqa: E402
from kernel.client import Client, RequestFailed  # noqa: E402
from kernel.home import Home  # noqa: E402
from kernel.image import connect  # noqa: E402

CATEGORIES = ("routing", "chats", "memory", "objects", "translator")
NOT_REMEMBERED = ("no memory", "do not remember exactly")


def batos(*args, home):
    """Run the CLI for `home`; its completed process."""
    return subprocess.run([sys.executable, "-m", "kernel.cli", *args, "--home", str(home.path)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def percentiles(values):
    """p50 and p90 in milliseconds."""
    if not values:
        return None, None
    ordered = sorted(values)
    return (round(1000 * statistics.median(ordered)),
            round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]))


class Timed:
    """One request through the orchestrator: its answer (or error), total seconds and the
    seconds to the first streamed piece of reply text (or to the reply itself)."""

    def __init__(self, client, payload):
        self.first = None
        started = time.perf_counter()

        def progress(message):
            if message.get("stage") == "reply" and self.first is None:
                self.first = time.perf_counter() - started

        try:
            self.answer, self.error = client.request(payload, on_progress=progress), None
        except RequestFailed as exc:
            self.answer, self.error = None, str(exc)
        self.seconds = time.perf_counter() - started
        if self.first is None:
            self.first = self.seconds

    @property
    def reply(self):
        """The reply text ('' for an error)."""
        return (self.answer or {}).get("reply") or ""


def run_routing(client, report):
    """ALFRED's choice for each routing case."""
    right, seconds, misses = 0, [], []
    for n, (text, persona) in enumerate(cases.ROUTING):
        timed = Timed(client, {"id": f"route-{n}", "intent": "route", "persona": "ALFRED",
                               "text": text})
        chosen = (timed.answer or {}).get("persona")
        seconds.append(timed.seconds)
        right += chosen == persona
        if chosen != persona:
            misses.append(f"{text!r}: {persona} → {chosen or timed.error}")
    p50, p90 = percentiles(seconds)
    report["routing"] = {"right": right, "of": len(cases.ROUTING), "p50_ms": p50, "p90_ms": p90}
    return misses


def run_chats(client, report):
    """Every chat to its persona: errors counted, first piece and whole reply timed."""
    errors, firsts, wholes, notes = 0, [], [], []
    for n, (persona, text) in enumerate(cases.CHATS):
        timed = Timed(client, {"id": f"chat-{n}", "session": f"chat-{n}", "text": text,
                               "persona": persona})
        errors += timed.error is not None
        firsts.append(timed.first)
        wholes.append(timed.seconds)
        notes.append(f"{persona} {text!r} → {timed.error or timed.reply!r}")
    report["chats"] = {"errors": errors, "of": len(cases.CHATS),
                       "first_p50_ms": percentiles(firsts)[0],
                       "first_p90_ms": percentiles(firsts)[1],
                       "whole_p50_ms": percentiles(wholes)[0],
                       "whole_p90_ms": percentiles(wholes)[1]}
    return notes


def run_memory(client, report):
    """Facts told in one session, asked about in another; and what was never told."""
    right, invented, notes = 0, 0, []
    for n, (told, question, words) in enumerate(cases.MEMORY):
        Timed(client, {"id": f"tell-{n}", "session": f"tell-{n}", "text": told})
        asked = Timed(client, {"id": f"ask-{n}", "session": f"ask-{n}", "text": question})
        ok = all(word in asked.reply.lower() for word in words)
        right += ok
        notes.append(f"{'ok ' if ok else 'BAD'} {question!r} → {asked.error or asked.reply!r}")
    for n, question in enumerate(cases.UNKNOWN_MEMORY):
        asked = Timed(client, {"id": f"unknown-{n}", "session": f"unknown-{n}",
                               "text": question})
        made_up = not any(marker in asked.reply.lower() for marker in NOT_REMEMBERED)
        invented += made_up
        notes.append(f"{'BAD' if made_up else 'ok '} {question!r} → "
                     f"{asked.error or asked.reply!r}")
    report["memory"] = {"right": right, "of": len(cases.MEMORY), "invented": invented,
                        "unknown_asked": len(cases.UNKNOWN_MEMORY)}
    return notes


def run_objects(client, image, report):
    """Plain-words requests on objects made for them, checked in the image afterwards."""
    right, notes = 0, []
    for n, (objects, text, check) in enumerate(cases.OBJECTS):
        with image.transaction(note=f"minds bench: objects for case {n}") as lobby:
            for name, slots in objects.items():
                setattr(lobby, name, lobby.traits.clone(**slots))
        timed = Timed(client, {"id": f"object-{n}", "session": f"object-{n}", "text": text})
        ok = checked(image, timed, check)
        right += ok
        notes.append(f"{'ok ' if ok else 'BAD'} {text!r} → {timed.error or timed.reply!r}")
    report["objects"] = {"right": right, "of": len(cases.OBJECTS)}
    return notes


def checked(image, timed, check):
    """Whether an object task did what it asked."""
    if timed.answer is None:
        return False
    if check[0] == "result":
        return check[1] in (timed.answer.get("result") or [])
    if check[0] == "slot":
        _kind, path, slot, value = check
        return image.run(lambda lobby: getattr(getattr(lobby, path, None), slot, None)) == value
    _kind, path, slots = check
    return image.run(lambda lobby: all(
        getattr(getattr(lobby, path, None), k, None) == v for k, v in slots.items()))


def run_translator(home, client, image, report):
    """The console's translator against the intended payloads, grounded in the lobby's
    names as the console reads them."""
    with image.transaction(note="minds bench: the translator's objects") as lobby:
        for name, slots in cases.TRANSLATOR_OBJECTS.items():
            if getattr(lobby, name, None) is None:
                setattr(lobby, name, lobby.traits.clone(**slots))
    names = set(client.request({"intent": "inspect", "target": "lobby",
                                "persona": "ALFRED"})["result"]["slots"])
    translator = Translator.from_config(home.config, personas=sorted(home.personas))
    right, seconds, notes = 0, [], []
    for text, wanted in cases.TRANSLATOR:
        started = time.perf_counter()
        payload = translator.translate(text, names).payload
        seconds.append(time.perf_counter() - started)
        ok = all(payload.get(k) == v for k, v in wanted.items()) and \
            ("persona" in wanted or "persona" not in payload)
        right += ok
        notes.append(f"{'ok ' if ok else 'BAD'} {text!r} → {payload}")
    p50, p90 = percentiles(seconds)
    report["translator"] = {"right": right, "of": len(cases.TRANSLATOR), "p50_ms": p50,
                            "p90_ms": p90}
    return notes


def goals(report):
    """The issue's goals against the figures."""
    g = {}
    if "routing" in report:
        r = report["routing"]
        g["routing_rate"] = round(r["right"] / r["of"], 3)
        g["routing_ok"] = g["routing_rate"] >= 0.9
        g["routing_p50_ok"] = r["p50_ms"] <= 300
    if "chats" in report:
        g["chat_errors"] = report["chats"]["errors"]
        g["first_token_p50_ok"] = report["chats"]["first_p50_ms"] <= 1000
    if "memory" in report:
        m = report["memory"]
        g["memory_rate"] = round(m["right"] / m["of"], 3)
        g["memory_ok"] = g["memory_rate"] >= 0.9 and m["invented"] == 0
    if "objects" in report:
        g["objects_rate"] = round(report["objects"]["right"] / report["objects"]["of"], 3)
        g["objects_ok"] = g["objects_rate"] >= 0.9
    if "translator" in report:
        t = report["translator"]
        g["translator_rate"] = round(t["right"] / t["of"], 3)
        g["translator_ok"] = g["translator_rate"] >= 0.9
    return g


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(CATEGORIES),
                        help="comma-separated categories to run (default: all)")
    parser.add_argument("--quiet", action="store_true", help="print figures, not each case")
    args = parser.parse_args()
    only = [c for c in args.only.split(",") if c]
    report, notes = {}, {}
    with tempfile.TemporaryDirectory(prefix="batos-minds-") as directory:
        home = Home.init(os.path.join(directory, "home"))
        up = batos("up", home=home)
        if up.returncode != 0:
            raise SystemExit(f"the cluster did not come up: {up.stderr.strip()}")
        image = connect(home.zeo_address, personas=home.personas)
        try:
            with Client(home.orchestrator_endpoints["frontend"], timeout=600) as client:
                Timed(client, {"id": "warm", "intent": "route", "persona": "ALFRED",
                               "text": "hello"})
                for category in only:
                    started = time.perf_counter()
                    if category == "routing":
                        notes[category] = run_routing(client, report)
                    elif category == "chats":
                        notes[category] = run_chats(client, report)
                    elif category == "memory":
                        notes[category] = run_memory(client, report)
                    elif category == "objects":
                        notes[category] = run_objects(client, image, report)
                    elif category == "translator":
                        notes[category] = run_translator(home, client, image, report)
                    print(f"{category}: {report[category]} "
                          f"({time.perf_counter() - started:.0f} s)", flush=True)
                    if not args.quiet:
                        for line in notes[category]:
                            print(f"    {line}", flush=True)
        finally:
            image.close()
            batos("down", home=home)
    print(json.dumps({"bench": "minds", **report, "goals": goals(report)}))


if __name__ == "__main__":
    main()

"""bench/minds_cases.py: the held-out cases stay apart from every example the code uses."""
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import minds_cases as cases  # noqa: E402


def texts():
    yield from (text for text, _ in cases.ROUTING)
    yield from (text for _, text in cases.CHATS)
    for told, question, _ in cases.MEMORY:
        yield told
        yield question
    yield from cases.UNKNOWN_MEMORY
    yield from (text for _, text, _ in cases.OBJECTS)
    yield from (text for text, _ in cases.TRANSLATOR)


EXAMPLES_LIVE_IN = ["kernel/genesis.py", "kernel/routing.py", "kernel/understanding.py",
                    "kernel/memory.py", "kernel/persona.py", "console/translator.py",
                    "conf/batos.toml"]


def test_no_case_appears_where_the_code_keeps_its_examples():
    sources = [(REPO / p).read_text(encoding="utf-8").lower() for p in EXAMPLES_LIVE_IN]
    leaked = [t for t in texts() if len(t) > 12 and any(t.lower().rstrip("?.!") in s
                                                        for s in sources)]
    assert leaked == []

"""A real segmentation fault, on demand, for tests of what survives one (never imported by
BAT OS itself): a test puts this folder on PYTHONPATH and sets BATOS_TEST_SEGFAULT to
  decode          llama.cpp's decode crashes, as a build for the wrong CPU does;
  persona:NAME    the (scripted) model crashes whenever persona NAME asks it something;
  start:NAME      the worker process of persona NAME crashes as it starts.
"""
import ctypes
import faulthandler
import os
import sys

WHERE = os.environ.get("BATOS_TEST_SEGFAULT", "")


def crash(*_args, **_kwargs):
    """Read address 0: SIGSEGV, as a fault in native code gives."""
    ctypes.string_at(0)


if WHERE == "decode":
    import llama_cpp._internals
    llama_cpp._internals.LlamaContext.decode = crash
elif WHERE.startswith("persona:"):
    import kernel.llm
    asked = kernel.llm.ScriptedModel.complete

    def complete(self, system, user, persona="*", **options):
        if persona == WHERE.split(":", 1)[1]:
            crash()
        return asked(self, system, user, persona, **options)
    kernel.llm.ScriptedModel.complete = complete
elif WHERE.startswith("start:") and "--persona" in sys.argv:
    if sys.argv[sys.argv.index("--persona") + 1:][:1] == [WHERE.split(":", 1)[1]]:
        faulthandler.enable()
        crash()

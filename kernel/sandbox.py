"""Turning an audited method source into a callable, away from the kernel's own namespace.

A learned method's source only reaches `compile_method` after the guardian accepted it. The
code runs with a small set of builtins and sees nothing of the kernel's modules. The guardian
issue replaces the compile step with RestrictedPython's guarded compile and adds the CPU-time
and memory budgets; callers depend only on `compile_method` and `SandboxError`.
"""
import builtins
import logging

from kernel.errors import BatosError

log = logging.getLogger(__name__)

SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
    "int", "len", "list", "map", "max", "min", "pow", "range", "repr", "reversed", "round",
    "set", "sorted", "str", "sum", "tuple", "zip", "isinstance",
    "True", "False", "None",
    "ArithmeticError", "Exception", "KeyError", "IndexError", "TypeError", "ValueError",
    "ZeroDivisionError",
)
SAFE_BUILTINS = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}


class SandboxError(BatosError):
    """An audited source could not be turned into a callable. Final for that source."""


def compile_method(source, selector):
    """Compile one audited `def` and return the function it defines."""
    try:
        code = compile(source, f"<method {selector}>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise SandboxError(f"method {selector!r} does not compile: {exc}") from None
    namespace = {"__builtins__": dict(SAFE_BUILTINS), "__name__": f"batos.method.{selector}"}
    exec(code, namespace)  # audited source only: the guardian ran before any install
    functions = [v for k, v in namespace.items() if not k.startswith("__") and callable(v)]
    if len(functions) != 1:
        raise SandboxError(f"method {selector!r} must define exactly one function")
    return functions[0]

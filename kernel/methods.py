"""Methods are data: learned behaviour lives in the image as immutable `Method` records.

A `Method` holds a selector, its source and its provenance (who wrote it, with which model,
for which mandate, the guardian's verdict, when). It never holds a function object: each
process compiles the source lazily and keeps the code in a volatile `_v_` attribute, so the
image stays portable across processes and Python versions. Redefining a selector installs a
new `Method` whose `previous` is the old one, so a method's history is never lost.

`install` is the single path by which a source becomes a method: it always asks the
PersistenceGuardian first, and installs nothing when the guardian says no.
"""
import datetime
import logging
import types

import persistent

from kernel import guardian, sandbox

log = logging.getLogger(__name__)


class Method(persistent.Persistent):
    """One learned method: selector, source and provenance; immutable once made."""

    def __init__(self, selector, source, provenance, previous=None):
        self.__dict__.update(selector=selector, source=source,
                             provenance=dict(provenance), previous=previous)

    def __setattr__(self, name, value):
        if not name.startswith(("_p_", "_v_")):
            raise AttributeError(f"a Method is immutable; install a new one to change {name!r}")
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if not name.startswith(("_p_", "_v_")):
            raise AttributeError(f"a Method is immutable; cannot delete {name!r}")
        super().__delattr__(name)

    @property
    def function(self):
        """The compiled function, compiled once per process and cached in `_v_function`
        (with `_v_bounded`: whether the code provably ends without the watchdog's help)."""
        function = getattr(self, "_v_function", None)
        if function is None:
            function = sandbox.compile_method(self.source, self.selector)
            self._v_bounded = sandbox.is_bounded(self.source)
            self._v_function = function
        return function

    def bind(self, receiver):
        """The method bound to `receiver`: calling it runs the code under the sandbox budgets,
        or directly when `sandbox.is_bounded` proved it needs none."""
        function = self.function
        if self._v_bounded:
            return types.MethodType(function, receiver)

        def learned_method(*args, **kwargs):
            return sandbox.call(function, receiver, *args, **kwargs)
        return learned_method

    def history(self):
        """This method and every earlier definition of its selector, newest first."""
        method = self
        while method is not None:
            yield method
            method = method.previous

    def describe(self):
        """Plain data for `batos inspect`: selector, source, provenance, number of versions."""
        return {"selector": self.selector, "kind": "method", "source": self.source,
                "provenance": dict(self.provenance),
                "versions": sum(1 for _ in self.history())}

    def __repr__(self):
        return f"<Method {self.selector!r} by {self.provenance.get('author', '?')}>"


sandbox.seal(Method)


def install(receiver, selector, source, author="kernel", **provenance):
    """Audit `source` and install it on `receiver` as `selector`; return the new `Method`.

    Raises `guardian.AuditRejected` (installing nothing) when the guardian refuses it.
    """
    verdict = guardian.audit(source)
    if not verdict.ok:
        log.info("guardian rejected %r for %s: %s", selector, author, verdict.violations)
        raise guardian.AuditRejected(verdict)
    if verdict.function_name != selector:
        verdict = guardian.Audit(source, (guardian.Violation(
            1, 0, "selector", f"def {verdict.function_name} does not match selector "
                              f"{selector!r}"),))
        raise guardian.AuditRejected(verdict)
    sandbox.compile_method(source, selector)  # fail before install, never after
    record = {"author": author, "audit": verdict.as_record(),
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    record.update(provenance)
    previous = receiver._own_methods().get(selector)
    method = Method(selector, source, record, previous if isinstance(previous, Method) else None)
    receiver._install_method(selector, method)
    return method

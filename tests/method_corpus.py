"""Methods for judging the guardian and the sandbox: hostile ones that must never run to
completion, and benign ones that must be accepted and give the right answers.

HOSTILE entries are (name, source, args). Each must be rejected by `guardian.audit`, or, if
accepted, be stopped at run time by the sandbox with nothing committed.
BENIGN entries are (name, source, slots of the receiver, args, expected result).
"""


def method(body, params="", name="m"):
    """A method named `name` whose indented body is `body`."""
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"def {name}(self{', ' + params if params else ''}):\n{lines}\n"


HOSTILE = [
    # -- public RestrictedPython advisories --------------------------------------------------
    ("CVE-2023-37271 generator frame", method(
        "g = (x for x in [1])\nreturn g.gi_frame.f_back.f_back.f_globals"), ()),
    ("CVE-2023-37271 generator frame via list", method(
        "gens = [(x for x in [1])]\nfor g in gens:\n    return g.gi_frame"), ()),
    ("CVE-2023-41039 format reads attributes", method(
        "return '{0.__class__.__mro__}'.format(self)"), ()),
    ("CVE-2023-41039 format_map", method(
        "return '{x.__class__}'.format_map({'x': self})"), ()),
    ("CVE-2023-41039 string.Formatter", method(
        "return string.Formatter().format('{0.__class__}', self)"), ()),
    ("CVE-2024-47532 AttributeError.obj", method(
        "try:\n    self.nothing\nexcept AttributeError as e:\n    return e.obj"), ()),
    ("CVE-2024-47532 exception name leak", method(
        "try:\n    self.nothing\nexcept AttributeError as e:\n    return e.name"), ()),
    ("CVE-2025-22153 try/except* type confusion", method(
        "try:\n    pass\nexcept* ValueError as e:\n    return e"), ()),
    ("CVE-2026-55830 positional-only guard shadowing", method(
        "f = lambda _write_, /: _write_\nreturn f(1)"), ()),
    ("CVE-2026-55830 shadowing _getattr_", method(
        "f = lambda _getattr_=None: self\nreturn f()"), ()),
    ("CVE-2026-76825 Formatter field resolution", method(
        "fmt = string.Formatter()\nreturn fmt.get_field('0.__class__', [self], {})"), ()),
    ("Formatter vformat", method("return Formatter().vformat('{0.__class__}', [self], {})"), ()),
    # -- classic jail escapes ----------------------------------------------------------------
    ("subclasses walk", method("return ().__class__.__bases__[0].__subclasses__()"), ()),
    ("self class", method("return self.__class__"), ()),
    ("self dict", method("return self.__dict__"), ()),
    ("builtins name", method("return __builtins__"), ()),
    ("dunder import", method("return __import__('os').system('true')"), ()),
    ("import os", method("import os\nreturn os.getcwd()"), ()),
    ("from import", method("from os import system\nreturn system"), ()),
    ("import inside", "import os\n" + method("return 1"), ()),
    ("eval", method("return eval('1+1')"), ()),
    ("exec", method("exec('x = 1')"), ()),
    ("compile", method("return compile('1', 'f', 'eval')"), ()),
    ("globals", method("return globals()"), ()),
    ("locals", method("return locals()"), ()),
    ("vars", method("return vars(self)"), ()),
    ("dir", method("return dir(self)"), ()),
    ("getattr", method("return getattr(self, '_p_jar')"), ()),
    ("getattr spelled out", method("g = getattr\nreturn g(self, 'x')"), ()),
    ("setattr", method("setattr(self, '_p_jar', None)"), ()),
    ("delattr", method("delattr(self, 'width')"), ()),
    ("hasattr", method("return hasattr(self, '_p_jar')"), ()),
    ("open file", method("return open('/etc/passwd').read()"), ()),
    ("with open", method("with open('/etc/passwd') as f:\n    return f.read()"), ()),
    ("input", method("return input()"), ()),
    ("breakpoint", method("breakpoint()"), ()),
    ("help", method("help()"), ()),
    ("print", method("print('hello')"), ()),
    ("type", method("return type(self)"), ()),
    ("object", method("return object.__subclasses__()"), ()),
    ("super", method("return super()"), ()),
    ("memoryview", method("return memoryview(b'abc')"), ()),
    ("iter with sentinel", method("return list(iter(int, 1))"), ()),
    ("exit", method("exit()"), ()),
    ("database connection", method("return self._p_jar"), ()),
    ("database root", method("return self._p_jar.root()"), ()),
    ("volatile write", method("self._v_cache = 1"), ()),
    ("private slot name", method("return self._parents"), ()),
    ("method table", method("return self._methods"), ()),
    ("function globals", method("f = lambda: 0\nreturn f.__globals__"), ()),
    ("function code", method("f = lambda: 0\nreturn f.__code__"), ()),
    ("func_globals", method("f = lambda: 0\nreturn f.func_globals"), ()),
    ("traceback frame", method(
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    return e.__traceback__.tb_frame"), ()),
    ("with_traceback", method(
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    return e.with_traceback(None)"), ()),
    ("mro", method("return int.mro()"), ()),
    ("fullwidth getattr (NFKC)", method("return \uff47\uff45\uff54\uff41\uff54\uff54\uff52(self, 'x')"), ()),
    ("fullwidth underscore attribute (NFKC)", method("return self.\uff3fp_jar"), ()),
    ("math italic eval (NFKC)", method("return \U0001d452val('1')"), ()),
    ("sys module", method("return sys.modules"), ()),
    ("os name", method("return os.environ"), ()),
    ("string module", method("return string.ascii_letters"), ()),
    ("kernel lookup", method("return self.lookup('width')"), ()),
    ("kernel define", method("self.define('x', 'def x(self):\\n    return 1\\n')"), ()),
    ("unknown global", method("return SystemExit"), ()),
    ("raise SystemExit", method("raise SystemExit(0)"), ()),
    ("catch BaseException", method(
        "while True:\n    try:\n        pass\n    except BaseException:\n        pass"), ()),
    ("bare except swallow", method(
        "while True:\n    try:\n        pass\n    except:\n        pass"), ()),
    ("finally continue", method(
        "while True:\n    try:\n        pass\n    finally:\n        continue"), ()),
    ("finally return", method("try:\n    return 1\nfinally:\n    return 2"), ()),
    ("match class pattern", method(
        "match self:\n    case object(__class__=c):\n        return c"), ()),
    ("global", method("global x\nx = 1"), ()),
    ("nonlocal", method("f = 1\nreturn f") .replace("f = 1", "nonlocal f"), ()),
    ("yield", method("yield 1"), ()),
    ("yield from", method("yield from [1]"), ()),
    ("async def", "async def m(self):\n    return 1\n", ()),
    ("await", method("await self"), ()),
    ("nested class", method("class X:\n    pass\nreturn X"), ()),
    ("nested def", method("def inner():\n    return 1\nreturn inner()"), ()),
    ("walrus", method("return [y := 1]"), ()),
    ("f-string dunder", method("return f'{self.__class__}'"), ()),
    ("f-string computed width", method("return f'{1:>{10**10}}'"), ()),
    ("f-string huge width", method("return f'{1:>99999999999}'"), ()),
    ("dict fromkeys via type", method("return dict.fromkeys(range(10))"), ()),
    ("to_bytes bomb", method("return (1).to_bytes(10**10, 'big')"), ()),
    # -- resource bombs that pass the audit and must be stopped at run time ---------------------
    ("endless loop", method("while True:\n    pass"), ()),
    ("endless loop with handler", method(
        "n = 0\nwhile True:\n    try:\n        n = n + 1\n    except Exception:\n        pass"), ()),
    ("power tower", method("return 10 ** 10 ** 10"), ()),
    ("pow builtin", method("return pow(10, 10 ** 9)"), ()),
    ("string repetition", method("return 'a' * 10 ** 12"), ()),
    ("list repetition", method("return [0] * 10 ** 10"), ()),
    ("shift bomb", method("return 1 << 10 ** 10"), ()),
    ("repeated squaring", method("x = 3\nwhile True:\n    x = x * x"), ()),
    ("augmented power", method("x = 7\nx **= 10 ** 9\nreturn x"), ()),
    ("huge range list", method("return list(range(10 ** 10))"), ()),
    ("huge range sum", method("return sum(range(10 ** 12))"), ()),
    ("ljust bomb", method("return 'x'.ljust(10 ** 11)"), ()),
    ("zfill bomb", method("return '1'.zfill(10 ** 11)"), ()),
    ("replace bomb", method("return ('a' * 100000).replace('', 'b' * 100000)"), ()),
    ("join bomb", method("return ('x' * 1000000).join(['a'] * 100000)"), ()),
    ("percent star width", method("return '%*d' % (10 ** 9, 1)"), ()),
    ("percent huge width", method("return '%999999999d' % 1"), ()),
    ("sum of lists", method("return sum([[1]] * 100000, [])"), ()),
    ("growing list", method("x = []\nwhile True:\n    x.append('a' * 1000000 + str(len(x)))"), ()),
    ("doubling list", method("x = [1]\nwhile True:\n    x = x + x"), ()),
    ("self recursion", method("return self.m()"), ()),
    ("lambda recursion", method("f = lambda g: g(g)\nreturn f(f)"), ()),
    ("recursion caught", method(
        "while True:\n    try:\n        return self.m()\n    except RuntimeError:\n        pass"), ()),
    # -- one C call that nothing interrupts (issue 18): refused before it runs ------------------
    ("round to minus 10**8 digits", method("return round(self.width, -(10 ** 8))"), ()),
    ("pow with a 30,000-bit modulus", method("m = 3 ** 19000\nreturn pow(3, m, m + 6)"), ()),
    ("floor division of huge ints", method(
        "a = 7 << 4000000\nb = 3 << 2000000\nreturn (a // b) % 1000"), ()),
    ("modulo of huge ints", method("return (7 << 4000000) % ((3 << 2000000) + 1)"), ()),
    ("divmod of huge ints", method("return divmod(7 << 4000000, (3 << 2000000) + 1)"), ()),
    ("augmented floor division", method("a = 7 << 4000000\na //= (3 << 2000000) + 1\nreturn 1"),
     ()),
    ("product of two huge ints", method("return (7 << 2000000) * (5 << 2000000) > 0"), ()),
    ("power that takes longer than it is big", method("return 3 ** 1000000 > 0"), ()),
    ("translate bomb", method("return ('a' * 10 ** 6).translate({97: 'b' * 4000})"), ()),
    ("percent of many big strings", method(
        "s = 'x' * 10 ** 6\nreturn ('%s' * 1500) % ((s,) * 1500)"), ()),
    ("percent of a shared list", method("s = 'x' * 10 ** 6\nreturn '%s' % ([s] * 1000,)"), ()),
    ("percent mapping, one key many times", method(
        "s = 'x' * 10 ** 6\nreturn ('%(a)s' * 1500) % {'a': s}"), ()),
    ("str of a shared list", method("return str(['x' * 10 ** 6] * 1000)"), ()),
    ("repr of a shared list", method("return repr(['x' * 10 ** 6] * 1000)"), ()),
    ("f-string of a shared list", method("x = ['x' * 10 ** 6] * 1000\nreturn f'{x}'"), ()),
    ("f-string of many big fields", method("s = 'x' * 10 ** 6\nreturn f'" + "{s}" * 300 + "'"),
     ()),
    ("encode with a codec that imports", method("return 'abc'.encode('cp1252')"), ()),
    ("decode with a codec that imports", method("return 'abc'.encode().decode('cp1252')"), ()),
    ("str() decoding with a codec that imports", method(
        "return str('abc'.encode(), 'idna')"), ()),
    ("error handler that imports", method("return '\u00e9'.encode('ascii', 'namereplace')"), ()),
    ("set of ints sharing one hash", method(
        "return len(set([k * (2 ** 61 - 1) for k in range(40000)]))"), ()),
    ("frozenset of ints sharing one hash", method(
        "return len(frozenset([k * (2 ** 61 - 1) for k in range(40000)]))"), ()),
    ("dict of keys sharing one hash", method(
        "keys = [k * (2 ** 61 - 1) for k in range(40000)]\nreturn len(dict(zip(keys, keys)))"),
     ()),
    ("set display of ints sharing one hash", method(
        "return len({*[k * (2 ** 61 - 1) for k in range(40000)]})"), ()),
    ("finally that loops again", method(
        "try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass"), ()),
    ("nested finally loops", method(
        "try:\n    try:\n        while True:\n            pass\n    finally:\n"
        "        while True:\n            pass\nfinally:\n    try:\n        while True:\n"
        "            pass\n    finally:\n        while True:\n            pass"), ()),
    # -- covenant violations -------------------------------------------------------------------
    ("covenant missing on a slot's value", method("self.rows[0].append(5)"), ()),
    ("covenant missing on append", method("self.items.append(1)"), ()),
    ("covenant missing through alias", method("items = self.items\nitems.append(1)"), ()),
    ("covenant missing on item write", method("self.items[0] = 2"), ()),
    ("covenant missing on delete", method("del self.items[0]"), ()),
    ("covenant missing on augmented item", method("self.items[0] += 1"), ()),
    ("covenant missing on update", method("self.table.update({'a': 1})"), ()),
    ("covenant missing on sort", method("self.items.sort()"), ()),
    ("covenant missing in loop alias", method("for row in self.rows:\n    row.append(1)"), ()),
    ("covenant missing on one branch", method(
        "if self.width > 1:\n    self.items.append(1)\n    return True\nself._p_changed = True\nreturn False"), ()),
    ("covenant before mutation", method("self._p_changed = True\nself.items.append(3)"), ()),
    ("covenant false", method("self.width = 3\nself._p_changed = False"), ()),
    ("covenant deleted", method("self.width = 3\ndel self._p_changed"), ()),
    ("covenant on another object", method("other = self\nself.width = 1\nother._p_changed = True"), ()),
    # -- self always names the receiver (issue 18) ----------------------------------------------
    ("rebind self then covenant", method("self = self.peer\nself._p_changed = True"), ()),
    ("augmented self", method("self += 1"), ()),
    ("loop over self", method("for self in [1]:\n    pass\nreturn self"), ()),
    ("catch into self", method(
        "try:\n    return 1 / 0\nexcept ZeroDivisionError as self:\n    return self"), ()),
    ("delete self", method("del self\nreturn 1"), ()),
    ("comprehension self", method("return [self for self in [1]]"), ()),
    ("lambda shadows self", method("f = lambda self: self\nreturn f(1)"), ()),
    # -- shape violations ----------------------------------------------------------------------
    ("no def", "x = 1\n", ()),
    ("two defs", method("return 1") + method("return 2", name="n"), ()),
    ("statement beside def", method("return 1") + "x = 2\n", ()),
    ("class at top", "class M:\n    def m(self):\n        return 1\n", ()),
    ("first parameter not self", "def m(this):\n    return this\n", ()),
    ("no parameters", "def m():\n    return 1\n", ()),
    ("decorated", "@staticmethod\n" + method("return 1"), ()),
    ("default that calls", method("return x", params="x=print('hi')"), ()),
    ("default that reads", method("return x", params="x=self"), ()),
    ("annotation", method("return x", params="x: int"), ()),
    ("return annotation", "def m(self) -> int:\n    return 1\n", ()),
    ("lambda at top", "m = lambda self: 1\n", ()),
    ("syntax error", "def m(self:\n    return 1\n", ()),
    ("empty", "", ()),
    ("deep nesting", method("return " + "(" * 5000 + "1" + ")" * 5000), ()),
    ("huge source", method("x = 1\n" * 5000), ()),
]

BENIGN = [
    ("area", method("return self.width * self.height", name="area"),
     {"width": 3, "height": 4}, (), 12),
    ("perimeter", method("return 2 * (self.width + self.height)", name="perimeter"),
     {"width": 3, "height": 4}, (), 14),
    ("scaled", method("return self.width * factor", params="factor", name="scaled"),
     {"width": 3}, (2.5,), 7.5),
    ("floor and mod", method("return (self.n // 3, self.n % 3, -self.n)", name="fm"),
     {"n": 10}, (), (3, 1, -10)),
    ("power small", method("return self.n ** 3 + 2 ** 10", name="p"), {"n": 4}, (), 1088),
    ("big but allowed", method("return len(str(2 ** 1000))", name="b"), {}, (), 302),
    ("divmod and abs", method("return divmod(abs(self.n), 4)", name="d"), {"n": -17}, (), (4, 1)),
    ("round", method("return round(self.x, 2)", name="r"), {"x": 3.14159}, (), 3.14),
    ("greeting", method("return 'Hello, ' + self.name + '!'", name="greet"),
     {"name": "Robin"}, (), "Hello, Robin!"),
    ("upper and strip", method("return self.text.strip().upper()", name="shout"),
     {"text": "  hi  "}, (), "HI"),
    ("f-string names", method("name = self.name\nreturn f'{name} has {n} items'", params="n",
                              name="summary"), {"name": "BABS"}, (3,), "BABS has 3 items"),
    ("f-string attribute and spec", method("return f'{self.x:>6.2f}|'", name="fmt"),
     {"x": 3.14159}, (), "  3.14|"),
    ("percent formatting", method("return '%s is %d years' % (self.name, self.age)", name="pf"),
     {"name": "ALFRED", "age": 70}, (), "ALFRED is 70 years"),
    ("percent dict", method("return '%(a)s-%(b)05d' % {'a': 'x', 'b': 42}", name="pd"),
     {}, (), "x-00042"),
    ("join and split", method("return '-'.join(self.text.split())", name="dash"),
     {"text": "a b c"}, (), "a-b-c"),
    ("replace", method("return self.text.replace('cat', 'dog')", name="swap"),
     {"text": "cat and cat"}, (), "dog and dog"),
    ("ljust modest", method("return self.text.ljust(6, '.')", name="pad"),
     {"text": "ab"}, (), "ab...."),
    ("string repetition modest", method("return '=' * self.n", name="rule"),
     {"n": 5}, (), "====="),
    ("for loop sum", method("total = 0\nfor v in self.values:\n    total += v\nreturn total",
                            name="total"), {"values": [1, 2, 3]}, (), 6),
    ("while loop", method("n = self.n\nsteps = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 "
                          "else 3 * n + 1\n    steps += 1\nreturn steps", name="collatz"),
     {"n": 6}, (), 8),
    ("break and continue", method("found = []\nfor i in range(20):\n    if i % 2:\n"
                                  "        continue\n    if i > 8:\n        break\n"
                                  "    found.append(i)\nreturn found", name="evens"),
     {}, (), [0, 2, 4, 6, 8]),
    ("list comprehension", method("return [v * v for v in self.values if v > 1]", name="sq"),
     {"values": [1, 2, 3]}, (), [4, 9]),
    ("dict comprehension", method("return {k: len(k) for k in self.words}", name="lens"),
     {"words": ["a", "bb"]}, (), {"a": 1, "bb": 2}),
    ("set comprehension", method("return sorted({w[0] for w in self.words})", name="initials"),
     {"words": ["apple", "avocado", "bean"]}, (), ["a", "b"]),
    ("generator expression", method("return sum(v for v in self.values if v % 2)", name="odd"),
     {"values": [1, 2, 3, 5]}, (), 9),
    ("any all", method("return (any(v > 2 for v in self.values), all(self.values))",
                       name="aa"), {"values": [1, 2, 3]}, (), (True, True)),
    ("sorted with lambda key", method("return sorted(self.people, key=lambda p: p['age'])",
                                      name="by_age"),
     {"people": [{"age": 3}, {"age": 1}]}, (), [{"age": 1}, {"age": 3}]),
    ("max with key", method("return max(self.words, key=len)", name="longest"),
     {"words": ["a", "abc", "ab"]}, (), "abc"),
    ("enumerate zip", method("return [(i, a + b) for i, (a, b) in enumerate(zip(self.x, self.y))]",
                             name="pairs"), {"x": [1, 2], "y": [10, 20]}, (), [(0, 11), (1, 22)]),
    ("tuple unpacking", method("a, b = self.pair\nreturn b - a", name="gap"),
     {"pair": [3, 10]}, (), 7),
    ("call another method", method("return self.area() * 2", name="double_area"),
     {"width": 2, "height": 5}, (), 20),
    ("clone", method("child = self.clone(width=1)\nreturn child.width + child.height",
                     name="child_sum"), {"width": 2, "height": 5}, (), 6),
    ("append with covenant", method("self.items.append(x)\nself._p_changed = True\n"
                                    "return len(self.items)", params="x", name="push"),
     {"items": [1]}, (9,), 2),
    ("dict update with covenant", method("self.table.update(extra)\nself._p_changed = True\n"
                                         "return sorted(self.table)", params="extra",
                                         name="merge"),
     {"table": {"a": 1}}, ({"b": 2},), ["a", "b"]),
    ("alias mutation with covenant", method("items = self.items\nitems.sort()\n"
                                            "self._p_changed = True\nreturn items",
                                            name="sort_items"), {"items": [3, 1, 2]}, (), [1, 2, 3]),
    ("slot write with covenant", method("self.count += 1\nself._p_changed = True\n"
                                        "return self.count", name="tick"), {"count": 4}, (), 5),
    ("branches with covenant", method("if n > 0:\n    self.level = n\n    self._p_changed = True\n"
                                      "    return 'set'\nreturn 'kept'", params="n", name="level_to"),
     {"level": 0}, (3,), "set"),
    ("try except", method("try:\n    return self.table[key]\nexcept KeyError:\n    return None",
                          params="key", name="get_or_none"), {"table": {"a": 1}}, ("z",), None),
    ("try except as", method("try:\n    return 1 / n\nexcept ZeroDivisionError as e:\n"
                             "    return str(e.args[0])", params="n", name="inv"),
     {}, (0,), "division by zero"),
    ("raise", method("if n < 0:\n    raise ValueError('negative')\nreturn n", params="n",
                     name="positive"), {}, (5,), 5),
    ("docstring with forbidden words", method(
        "'''Never import os, eval, __class__ or getattr here: this is only text.'''\n"
        "return self.width", name="documented"), {"width": 7}, (), 7),
    ("string with dunder text", method("return 'the __init__ method'", name="text"),
     {}, (), "the __init__ method"),
    ("keyword arguments and defaults", method("return prefix + self.name + suffix",
                                              params="prefix='<', suffix='>'", name="wrap"),
     {"name": "x"}, (), "<x>"),
    ("star args", method("return sum(numbers) + len(options)", params="*numbers, **options",
                         name="total_of"), {}, (1, 2, 3), 6),
    ("isinstance and conversions", method(
        "return [int(v) if isinstance(v, str) else float(v) for v in self.values]", name="conv"),
     {"values": ["1", 2]}, (), [1, 2.0]),
    ("min max len", method("return (min(self.v), max(self.v), len(self.v))", name="stats"),
     {"v": [4, 2, 9]}, (), (2, 9, 3)),
    ("slicing", method("return self.text[1:4] + self.text[::-1][:2]", name="cut"),
     {"text": "abcdef"}, (), "bcdfe"),
    ("nested data", method("return self.config['db']['port'] + 1", name="next_port"),
     {"config": {"db": {"port": 8100}}}, (), 8101),
    ("conditional expression", method("return 'big' if self.n > 10 else 'small'", name="size"),
     {"n": 3}, (), "small"),
    ("boolean logic", method("return (self.a and not self.b) or self.c", name="logic"),
     {"a": True, "b": False, "c": False}, (), True),
    ("set operations", method("return sorted(set(self.a) & set(self.b))", name="common"),
     {"a": [1, 2, 3], "b": [2, 3, 4]}, (), [2, 3]),
    ("reversed and chr ord", method("return ''.join(chr(ord(c) + 1) for c in reversed(self.s))",
                                    name="shift"), {"s": "abc"}, (), "dcb"),
    ("delete item with covenant", method("del self.table[key]\nself._p_changed = True\n"
                                         "return len(self.table)", params="key", name="drop"),
     {"table": {"a": 1, "b": 2}}, ("a",), 1),
    ("map filter", method("return list(map(lambda v: v * 10, filter(lambda v: v > 1, self.v)))",
                          name="mf"), {"v": [1, 2, 3]}, (), [20, 30]),
    ("range sum", method("return sum(range(1, self.n + 1))", name="triangle"),
     {"n": 100}, (), 5050),
    ("hex bin", method("return hex(self.n) + bin(self.n)", name="bases"),
     {"n": 5}, (), "0x50b101"),
    # -- issue 18: slot assignment needs no Covenant; guarded builtins still act as before ----
    ("slot write without covenant", method("self.width = w\nreturn self.width", params="w",
                                           name="resize"), {"width": 1}, (5,), 5),
    ("augmented slot without covenant", method("self.count += 1\nreturn self.count",
                                               name="bump"), {"count": 4}, (), 5),
    ("types still answer isinstance", method(
        "return [isinstance(v, (str, dict)) or isinstance(v, set) for v in self.values]",
        name="kinds"), {"values": ["a", {"b": 1}, 3]}, (), [True, True, False]),
    ("str dict set frozenset calls", method(
        "return (str(self.n), repr('a'), sorted(set([3, 1, 3])), dict([('a', 1)], b=2),"
        " len(frozenset('abca')), sorted({*self.items, 0}))", name="calls"),
     {"n": 7, "items": [2, 1]}, (), ("7", "'a'", [1, 3], {"a": 1, "b": 2}, 3, [0, 1, 2])),
    ("utf-8 and latin-1 round trips", method(
        "data = self.text.encode('UTF-8')\nreturn data.decode('utf8') + str('\u00e9'.encode("
        "'latin-1'), 'iso-8859-1')", name="codecs"), {"text": "h\u00e9"}, (), "h\u00e9\u00e9"),
    ("modest modular pow and round", method(
        "return (pow(3, 65537, (1 << 2047) - 1) > 0, pow(3, -1, 7), round(123456, -3),"
        " divmod(10 ** 50, 7 ** 20)[1] < 7 ** 20)", name="arith"),
     {}, (), (True, 5, 123000, True)),
    ("big but cheap int work", method(
        "a = 1 << 1000000\nreturn ((a * 12345) // 3 % 1000, (a / (a >> 10)))", name="big"),
     {}, (), ((1 << 1000000) * 12345 // 3 % 1000, 1024.0)),
    ("translate and percent and f-string repr", method(
        "return (self.s.translate({97: 'xy'}), '%r|%5.1f|%x' % (self.s, 2.25, 255),"
        " f'{self.s!r:>6}')", name="texts"),
     {"s": "abc"}, (), ("xybc", "'abc'|  2.2|ff", " 'abc'")),
]

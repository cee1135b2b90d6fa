"""The BAT OS kernel: the objects of the Living Image and the machinery that keeps them.

docs/design.md gives the whole shape; each module opens with its role. One line each:

The object model
  `uvm`            UvmObject, the one entity class: slots, parents, delegation, merges
  `slot_values`    what a slot may hold, and lists and dicts that know their owner
  `methods`        methods as immutable `Method` records; `install`, the one path in
  `primitives`     trusted kernel functions the image refers to by name
  `genesis`        the Prototypal Awakening: the primordial objects, created once
  `paths`          lobby paths such as `personas.BRICK`
  `values`         plain renderings of image values; the caller's-expectation check

The image and its history
  `image`          the ZEO client side: connect, transactions, retries, undo, pack
  `timetravel`     read-only views of the image as it was (`--at`)
  `versions`       every version of an object's slots and a method's source; revert
  `backup`         backups and restores with ZODB's repozo
  `ledger`         the request ledger: each request's effects commit exactly once
  `conversation`   one bounded BTree of turns per session
  `memory`         BABS's memory, recalled by ranked, stemmed keywords

Safety
  `guardian`       the PersistenceGuardian: the deny-by-default audit and its rule catalogue
  `sandbox`        RestrictedPython execution under CPU-time, memory and depth budgets
  `isolation`      disposable forks for methods that loop or call
  `limits`         size bounds of requests, replies, turns, memories, the ledger
  `settings`       one process's settings (size bounds, sandbox budgets) from its home
  `ratelimit`      rate-limited logging of dropped input
  `errors`         the kernel's exceptions, transient or final

`_doesNotUnderstand`
  `dnu`            mandate → write → audit → trial → decide → integrate
  `grammars`       the per-mandate GBNF grammar of the method language
  `gbnf`           reading, pruning and sampling that GBNF subset
  `behaviour`      probe calls, behaviour signatures and their clusters
  `synthesis`      the small expressions that meet a missed expectation
  `library`        the image's own methods as BRICK's examples
  `seed_methods`   the seed library of domain methods genesis puts in every image

Minds
  `llm`            the completion interface, the llama.cpp backend, the scripted double
  `model_parts`    a model the package index ships in slices, assembled once and checked
  `sampling`       a grammar asked about each freely sampled token, not the whole vocabulary
  `served`         models served over the OpenAI-compatible HTTP API
  `scoring`        likelihoods of a text after cached prefixes: choose, don't generate
  `routing`        ALFRED's routing, taught by examples held in the image
  `understanding`  the plans a chat can mean, for the model to choose among
  `commands`       the command schema and its executor
  `persona`        what a persona does with a request
  `runtime_probe`  does llama.cpp run on this CPU? asked in a child process first

Processes and the wire
  `protocol`       BATOS/1, the Majordomo-style wire protocol (its docstring is the spec)
  `orchestrator`   the broker between consoles and persona workers
  `worker`         one process serving one persona's service
  `client`         the client side of BATOS/1
  `supervise`      the cluster under supervisord: up, down, status, restart
  `keys`           CURVE keys and the allow-lists of consoles and workers (remote mode)
  `certs`          the home's CA and ZEO's TLS certificates (remote mode)
  `home`           a data directory and its configuration
  `cli`            the `batos` command: each command's arguments beside its handler
  `demo`           the `make run` demonstration that `batos awaken` shows
"""

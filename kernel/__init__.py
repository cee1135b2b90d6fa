"""The BAT OS kernel: the objects of the Living Image and the machinery that keeps them.

`uvm` defines the one entity class, `methods` and `primitives` how behaviour lives in the
image as data, `genesis` the Prototypal Awakening, `image` the ZEO client side (connect,
transactions, retries), `home` a data directory and its configuration, and `cli` the `batos`
command.
"""

"""The ZEO server of a BAT OS home: the one process that owns the Living Image's file.

`server` runs ZEO's own storage server over `HOME/live_image.fs` from the home's ZConfig
file, in the foreground, with the `kernel` package importable so that `UvmObject`'s conflict
resolution runs here. `maintenance` holds the offline checks (ZODB's fstest and fsrefs, then
every object loaded); `repair` moves the slot values that cannot be loaded into quarantine.
"""

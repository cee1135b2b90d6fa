"""The Synaptic Console: people talk to the Living Image through the orchestrator over ZMQ.

It never opens the database, so it runs anywhere (on another host with a CURVE key in remote
mode). `chat_client` is the console itself (`batos console`): a session per console, the
stages of a request on its way, streamed replies, other consoles' events, slash commands, and
`/at` for the image as it was. `translator` turns a line into a BATOS/1 payload by letting the
console's own small model choose among what the line can mean.
"""

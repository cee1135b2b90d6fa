"""The Synaptic Console: people talk to the Living Image through the orchestrator over ZMQ.

It never opens the database. `chat_client` (the interactive console) arrives with the
cluster; this package already exists so that the project's layout is stable.
"""

"""The top floor: what people run. The `whistle` CLI (`cli.py`, with `issues.py` for issues over
the API and `secrets.py` for an installation's secrets), the dev stack (`dev.py`, and `stack.py`
for the file that lets every command find it) and the simulation (`simulation/`). It stands on
the ground floor beside it in `whistle/` (configuration, Temporal client, codec, calendar,
jurisdiction, read model, metrics), which never imports from here."""

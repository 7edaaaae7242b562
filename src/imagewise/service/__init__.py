"""``imagewise serve``: the service that keeps images checked (scan on push, jobs, metrics, API).

Needs the server extra (``pip install 'imagewise[server]'``: FastAPI, uvicorn, SQLAlchemy,
prometheus_client). Every job calls the same library the CLI does.
"""

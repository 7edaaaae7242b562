"""Names vulture reports as unused that are used by the standard library or pytest (vulture's
allow-list format: a name or ``_.attribute`` counts as a use). Read by ``vulture`` (paths in
pyproject.toml's ``[tool.vulture]``) and tests/test_guards.py; keep it small: real dead code is
deleted, not listed here."""

# attributes of tarfile.TarInfo, set for tarfile to write
_.gname
_.devmajor
_.devminor
_.pax_headers

# http.server.BaseHTTPRequestHandler hooks (the test registries and mirrors)
_.do_GET
_.do_HEAD
_.do_POST
_.do_PUT
_.do_PATCH
_.do_DELETE
_.log_message
_.handle_error
_.close_connection
protocol_version

# shlex.shlex settings
_.whitespace_split
_.commenters

# module attributes importlib.util.module_from_spec sets (dockerfile/shell.py loads an
# extension module without importlib.util)
_.__spec__
_.__loader__
_.__package__

# pytest hooks and module variables
pytest_plugins
pytest_configure
pytest_sessionfinish
pytestmark

# a prometheus_client collector's protocol method, uvicorn's stop flag and signal hook
# (imagewise.service), aiosmtpd's handler hook (the test SMTP server)
_.collect
_.should_exit
_.capture_signals
_.handle_DATA

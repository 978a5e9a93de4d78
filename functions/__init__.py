"""Azure Functions blueprints: thin handlers that parse, call a pure function, and answer."""

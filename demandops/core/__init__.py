"""The basics every layer may use: settings, the lake, errors, hashing, calendar, telemetry.

Nothing here imports from any other package of the project."""

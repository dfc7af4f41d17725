"""All data shapes of soundfleet: api-v2 payloads, API bodies, job specs, settings, tables."""

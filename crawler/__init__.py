"""The crawler worker: HTTP client, client_id discovery, handlers, bulk landing."""

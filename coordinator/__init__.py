"""The coordinator service: jobs API, work leasing, client_id registry, fleet budget."""

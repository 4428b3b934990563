"""The GraphQL API (strawberry): schema split by noun, per-request context and DataLoaders, permissions,
limits on what a query may cost, and the two HTTP endpoints beside it (uploads, signed blob downloads)."""

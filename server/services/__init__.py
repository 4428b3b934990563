"""The service layer: what the server does, whoever asks (GraphQL, the REST upload, the command line).

Each service is a plain async function over a :class:`~server.services.runtime.Runtime` (session factory,
blob store, event bus, delivery, limiters, settings) and an explicit
:class:`~server.services.permissions.Actor` where it matters who asks. It checks the permission itself,
runs the transaction, talks to storage, publishes events and applies rate limits, and answers with
domain results or raises the errors of :mod:`server.exceptions` and :mod:`server.domain.errors`. The entry
points only translate: GraphQL resolvers into GraphQL types and ``…Result`` unions, the upload route into
HTTP answers, the command line into messages. A GraphQL resolver passes its request's DataLoaders as the
:class:`~server.services.permissions.RoleLookup`, so a check its permission class made costs nothing again.

Modules: ``runtime`` (what services work with), ``permissions`` (who asks, what they may do), ``limits`` and
``events`` (rate limits, announcing, and the streams subscriptions follow), ``watches`` (whether an open
subscription may go on), and one module per subject: ``uploads``, ``images``, ``segmentations``, ``outlines``
(a version's binary outlines), ``exports``, ``projects``, ``jobs``, ``methods``, ``users``, ``cluster``,
``cdn``, ``signing``, ``blobs`` (removing unused originals) and ``spool`` (the folder uploads arrive in),
``sessions`` (tokens, bootstrap tokens), ``installation`` (migrating, the local user) and ``health``
(readiness).
"""

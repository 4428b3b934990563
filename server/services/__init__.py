"""The service layer: what the server does, whoever asks (GraphQL, the REST upload, the command line).

Each service is a plain async function over a :class:`~server.services.runtime.Runtime` (session factory,
blob store, event bus, delivery, limiters, settings) and an explicit :class:`~server.services.actors.Actor`
where it matters who asks. It checks the permission, runs the transaction, talks to storage, publishes
events and applies rate limits, and answers with domain results or raises the errors of
:mod:`server.exceptions` and :mod:`server.domain.errors`. The entry points only translate: GraphQL
resolvers into GraphQL types, the upload route into HTTP answers, the command line into messages.

Modules: ``runtime`` (what services work with), ``actors`` and ``permissions`` (who asks and what they
may do), ``uploads``, ``segmentations``, ``exports``, ``blobs`` and ``spool`` (the upload folder).
"""

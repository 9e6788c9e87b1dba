"""A hostile gopher origin and the tools to measure a mirror against it.

``origin``: ``HostileOrigin``, one loopback trio server whose selectors each
misbehave in one way, beside a normal part that must be mirrored whole.
``child``: runs one crawl in a subprocess and reports its figures (time,
peak memory, errors).  ``figures``: the table of ``docs/reliability.md``.
"""

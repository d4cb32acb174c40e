"""Small, optional helpers for frameworks: each module imports its framework
only when it is used, and ``import logdrain`` imports none of them.

``logdrain.integrations.django``: a middleware that binds a request id, the
method and the path to every record logged during a request, and a logging
filter that adds the user id (only when already loaded) and turns the
``request`` attribute of ``django.request`` records into fields.

``logdrain.integrations.celery``: ``install()`` binds the task id and name to
every record logged inside a task, through Celery's signals.
"""

"""logdrain.integrations.django with a real Django (its test client), in a
subprocess: request fields on the records logged during a request, the user
id only when already loaded, django.request's ``request`` turned into fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from logdrain.testing import Collector

from . import proc

pytestmark = pytest.mark.timeout(180)
pytest.importorskip("django")

APP = """
import logging, logging.config, os, sys
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=[
        "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    ],
    MIDDLEWARE=[
        "logdrain.integrations.django.RequestContextMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    LOGGING={
        "version": 1,
        "filters": {"request": {"()": "logdrain.integrations.django.RequestFilter"}},
        "handlers": {"drain": {"class": "logdrain.DrainHandler", "url": os.environ["COLLECTOR"],
                               "filters": ["request"], "flush_interval": 0.05}},
        "loggers": {"app": {"handlers": ["drain"], "level": "INFO"},
                    "django.request": {"handlers": ["drain"], "level": "WARNING"}},
    },
)
django.setup()

from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from django.contrib.auth.models import User

log = logging.getLogger("app")

def hello(request):
    log.info("hello")
    return HttpResponse("ok")

def whoami(request):
    name = request.user.username  # the view reads the user: it is loaded now
    log.info("who")
    return HttpResponse(name)

def boom(request):
    raise ValueError("boom")

def headers(request):  # a view that logs what it was sent: redact_keys masks the secrets
    meta = {k: v for k, v in request.META.items() if k.startswith("HTTP_")}
    log.info("headers", extra={"headers": dict(request.headers), "meta": meta})
    return HttpResponse("ok")

urlpatterns = [path("hello/", hello), path("who/", whoami), path("boom/", boom),
               path("headers/", headers)]

call_command("migrate", verbosity=0)
user = User.objects.create_user("ada", password="pw")
client = Client(raise_request_exception=False)
queries = []
with connection.execute_wrapper(lambda run, sql, *a: queries.append(sql) or run(sql, *a)):
    first = client.get("/hello/", HTTP_X_REQUEST_ID="req-123", HTTP_AUTHORIZATION="Bearer s3cr3t")
client.force_login(user)
second = client.get("/who/", HTTP_COOKIE_EXTRA="x")
third = client.get("/boom/?i=0", HTTP_USER_AGENT="probe/1.0")
client.get("/headers/", HTTP_AUTHORIZATION="Bearer s3cr3t", HTTP_COOKIE="sessionid=s3cr3t",
           HTTP_X_API_KEY="s3cr3t", HTTP_ACCEPT="text/plain")
import logdrain
for handler in logging.getLogger("app").handlers:
    handler.flush()
print(json.dumps({"first": first["X-Request-ID"], "third": third.status_code, "pk": user.pk,
                  "queries_in_first": len(queries)}))
""".replace("import logging,", "import json, logging,")


def test_request_fields_user_id_and_django_request(collector: Collector) -> None:
    done = proc.run(APP, timeout=120, COLLECTOR=collector.url)
    assert done.returncode == 0, done.stderr
    facts: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["first"] == "req-123"  # the incoming id, sent back
    assert facts["third"] == 500
    assert collector.wait_for_count(4)
    by_message = {r["message"]: r for r in collector.records}
    hello = by_message["hello"]
    assert (hello["request_id"], hello["http_method"], hello["http_path"]) == (
        "req-123",
        "GET",
        "/hello/",
    )
    assert "user_id" not in hello  # anonymous, and never loaded: no query for it
    who = by_message["who"]
    assert who["user_id"] == facts["pk"] and who["http_path"] == "/who/"
    assert len(who["request_id"]) == 32  # a fresh one when none came
    (boom,) = [r for r in collector.records if r.get("logger") == "django.request"]
    assert boom["http_status"] == 500 and boom["http_path"] == "/boom/"
    assert boom["user_agent"] == "probe/1.0"
    assert boom.get("request") is None  # not "<WSGIRequest: GET '/boom/?i=0'>"
    logged = by_message["headers"]  # redact_keys, on by default: nested values masked
    assert logged["headers"]["Authorization"] == "***" and logged["headers"]["Cookie"] == "***"
    assert logged["headers"]["X-Api-Key"] == "***" and logged["headers"]["Accept"] == "text/plain"
    assert logged["meta"]["HTTP_AUTHORIZATION"] == "***" and logged["meta"]["HTTP_COOKIE"] == "***"
    assert logged["meta"]["HTTP_ACCEPT"] == "text/plain"
    shipped = json.dumps(collector.records)
    assert "s3cr3t" not in shipped and "WSGIRequest" not in shipped

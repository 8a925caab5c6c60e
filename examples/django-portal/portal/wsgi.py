"""The WSGI entry point for mod_wsgi (WSGIScriptAlias /portal .../portal/wsgi.py).

httpd's SetEnv values reach each request's WSGI environ, not os.environ,
and Django reads its settings once: the first request copies the portal's
settings from its environ into os.environ before Django starts.
"""

import os
import threading

from django.core.wsgi import get_wsgi_application

SETTINGS_FROM_HTTPD = ("PORTAL_VAR_DIR", "PORTAL_ALLOWED_HOSTS", "PORTAL_SECRET_KEY",
                       "DEPLOY_URL", "DEPLOY_BROWSER_BASE")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
_django = None
_starting = threading.Lock()


def application(environ, start_response):
    global _django
    if _django is None:
        with _starting:
            if _django is None:
                for name in SETTINGS_FROM_HTTPD:
                    if environ.get(name):
                        os.environ.setdefault(name, environ[name])
                _django = get_wsgi_application()
    return _django(environ, start_response)

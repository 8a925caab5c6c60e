"""Settings of the deployment portal (examples/django-portal).

Everything that differs between installations comes from the environment,
which under mod_wsgi is httpd's `SetEnv` (see portal/wsgi.py):

- PORTAL_VAR_DIR: a directory the httpd user (www-data) can write: the
  SQLite database and the generated secret key live there. Default: var/
  beside manage.py.
- PORTAL_ALLOWED_HOSTS: the host names the portal answers to, separated by
  spaces. Default: "127.0.0.1 localhost".
- DEPLOY_URL: mod_deploy's Location as the portal reaches it from the server,
  e.g. http://127.0.0.1:8080/deploy. Default: the origin the browser used
  (scheme, host and port of the request) with /deploy. httpd can also give
  it per <Location> (SetEnv DEPLOY_URL ...): that wins, request by request.
- DEPLOY_BROWSER_BASE: mod_deploy's Location as the browser reaches it
  (same origin as the portal). Default: /deploy.
"""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def _secret_key():
    """The key in VAR_DIR/secret_key, made on first use (readable by its owner only)."""
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        return key


SECRET_KEY = os.environ.get("PORTAL_SECRET_KEY") or _secret_key()
DEBUG = False
ALLOWED_HOSTS = os.environ.get("PORTAL_ALLOWED_HOSTS", "127.0.0.1 localhost").split()

DEPLOY_URL = os.environ.get("DEPLOY_URL", "")
DEPLOY_BROWSER_BASE = os.environ.get("DEPLOY_BROWSER_BASE", "/deploy")
DEPLOY_TIMEOUT = 10  # seconds for each request to mod_deploy; it answers in milliseconds

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # httpd authenticates (AuthType Basic over the portal and /deploy);
    # Django takes REMOTE_USER as it is and creates the user on first sight.
    "django.contrib.auth.middleware.RemoteUserMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
# Sessions in signed cookies: no session table to clean up.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "portal.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# 5xx answers go to stderr, which mod_wsgi writes to httpd's error_log: a
# crash with its traceback, and the 502 of an unreachable mod_deploy; 4xx
# answers (bad input, refusals) are not logged.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}

"""The portal's client of mod_deploy's HTTP API (docs/api.md), on the
standard library only.

Every call is made on behalf of the user of the current request: it
forwards the request's Authorization header (mod_wsgi hands it to Django
with `WSGIPassAuthorization On`), so httpd authorizes each call as that
user and mod_deploy records them as the job's submitted_by.

Every failure becomes a DeployError with a message for a person: mod_deploy's
own JSON error, httpd's own pages (an HTML 401 or 403 from `Require`, a 500,
a proxy's 502), a timeout, an unreachable server.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

MAX_ANSWER = 1 << 20  # bytes read of any answer; a log beyond that is cut


class DeployError(Exception):
    """A call to mod_deploy that did not succeed.

    status: the HTTP status, or None when no answer came.
    code: mod_deploy's error code ("invalid_param", ...), or None when the
    answer was not mod_deploy's JSON (httpd's own 401/403 page, say)."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def deploy_url(request):
    """mod_deploy's Location as this server reaches it, without a trailing slash."""
    url = request.META.get("DEPLOY_URL") or settings.DEPLOY_URL
    if not url:  # the origin the browser used: same host, scheme and port
        url = f"{request.scheme}://{request.get_host()}/deploy"
    return url.rstrip("/")


def _refusal(status, reason, content_type, body):
    """The DeployError for an HTTP answer that is not 2xx."""
    if content_type.split(";")[0].strip() == "application/json":
        try:
            error = json.loads(body)
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return DeployError(error["message"], status, error.get("error"))
        except ValueError:
            pass
    # httpd's own page (text/html for 401, 403, 500...): its status says it all.
    words = {401: "you are not logged in to mod_deploy (401 Unauthorized)",
             403: "you may not do this (403 Forbidden)"}
    return DeployError(f"mod_deploy refused: {words.get(status, f'{status} {reason}')}", status)


class DeployClient:
    def __init__(self, request):
        self.base = deploy_url(request)
        self.headers = {"Accept": "application/json"}
        if "HTTP_AUTHORIZATION" in request.META:
            self.headers["Authorization"] = request.META["HTTP_AUTHORIZATION"]

    def _call(self, method, path, body=None, want="json"):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method == "POST":
            data = b""
        call = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(call, timeout=settings.DEPLOY_TIMEOUT) as answer:
                content = answer.read(MAX_ANSWER)
                if want == "text":
                    return content.decode("utf-8", "replace"), answer.headers
                try:
                    return json.loads(content)
                except ValueError:
                    raise DeployError(f"{self.base}{path} did not answer JSON "
                                      f"(is DEPLOY_URL mod_deploy's Location?)", answer.status)
        except urllib.error.HTTPError as e:
            with e:
                raise _refusal(e.code, e.reason, e.headers.get("Content-Type", ""),
                               e.read(MAX_ANSWER)) from None
        except (urllib.error.URLError, OSError) as e:  # refused, no route, timed out, DNS
            reason = getattr(e, "reason", e)
            raise DeployError(f"cannot reach mod_deploy at {self.base}: {reason}") from None

    def targets(self):
        return self._call("GET", "/targets")

    def jobs(self, limit=50):
        return self._call("GET", f"/jobs?limit={int(limit)}")

    def job(self, job_id):
        return self._call("GET", f"/jobs/{int(job_id)}")

    def log(self, job_id):
        """(text, headers) of the job's output."""
        return self._call("GET", f"/jobs/{int(job_id)}/log", want="text")

    def submit(self, target, params):
        """The job JSON of the accepted (or joined) job."""
        return self._call("POST", f"/targets/{urllib.parse.quote(target, safe='')}",
                          {"params": params})

    def cancel(self, job_id):
        return self._call("POST", f"/jobs/{int(job_id)}/cancel")

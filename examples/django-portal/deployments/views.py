"""The portal's pages: the deployment form, the history, a job."""

import re

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .deploy_client import DeployClient, DeployError
from .forms import DeployForm

HISTORY_LIMIT = 50
FINAL_STATES = {"succeeded", "failed", "timed_out", "canceled", "expired", "lost"}


def _status_for(error):
    """The status of the portal's page for a failed call: mod_deploy's own
    4xx as they are (bad input, not allowed), 502 when it is unreachable or
    failing."""
    if error.status and 400 <= error.status < 500:
        return error.status
    return 502


def _context(request, **values):
    values.setdefault("deploy_base", settings.DEPLOY_BROWSER_BASE)
    return values


@require_http_methods(["GET", "HEAD", "POST"])
def deploy(request):
    client = DeployClient(request)
    try:
        targets = [t["name"] for t in client.targets()]
    except DeployError as e:  # no list of targets: nothing can be submitted
        return render(request, "deployments/form.html",
                      _context(request, form=DeployForm(request.POST or None), error=e.message),
                      status=_status_for(e))
    if request.method != "POST":
        return render(request, "deployments/form.html",
                      _context(request, form=DeployForm(targets=targets)))
    form = DeployForm(request.POST, targets=targets)
    if not form.is_valid():
        return render(request, "deployments/form.html", _context(request, form=form), status=400)
    data = form.cleaned_data
    try:
        job = client.submit(data["target"], {"vm": data["vm"], "version": data["version"]})
    except DeployError as e:
        # "parameter 'version' does not match ...": next to its field when it names one.
        named = re.match(r"parameter '([a-z_]+)'", e.message)
        field = named.group(1) if named and named.group(1) in form.fields else None
        form.add_error(field, e.message)
        return render(request, "deployments/form.html", _context(request, form=form),
                      status=_status_for(e))
    return redirect(reverse("deployments:job", args=[job["id"]]))


@require_http_methods(["GET", "HEAD"])
def history(request):
    try:
        jobs = DeployClient(request).jobs(HISTORY_LIMIT)
        error = None
    except DeployError as e:
        jobs, error = [], e
    return render(request, "deployments/history.html",
                  _context(request, jobs=jobs, error=error and error.message,
                           limit=HISTORY_LIMIT),
                  status=_status_for(error) if error else 200)


@require_http_methods(["GET", "HEAD"])
def job(request, job_id):
    client = DeployClient(request)
    try:
        found = client.job(job_id)
        log, _ = client.log(job_id)
    except DeployError as e:
        return render(request, "deployments/job.html",
                      _context(request, job=None, job_id=job_id, error=e.message),
                      status=_status_for(e))
    return render(request, "deployments/job.html",
                  _context(request, job=found, job_id=job_id, log=log,
                           final=found["state"] in FINAL_STATES))


@require_POST
def cancel(request, job_id):
    try:
        DeployClient(request).cancel(job_id)
    except DeployError as e:
        if e.code != "conflict":  # already finished: the job page says so
            return render(request, "deployments/job.html",
                          _context(request, job=None, job_id=job_id, error=e.message),
                          status=_status_for(e))
    return redirect(reverse("deployments:job", args=[job_id]))

from django.urls import path

from . import views

app_name = "deployments"
urlpatterns = [
    path("", views.history, name="history"),
    path("deploy/", views.deploy, name="deploy"),
    path("jobs/<int:job_id>/", views.job, name="job"),
    path("jobs/<int:job_id>/cancel", views.cancel, name="cancel"),
]

from django.urls import include, path

urlpatterns = [path("", include("deployments.urls"))]

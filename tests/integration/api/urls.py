"""The project's URLs plus the API, for test runs before mediation/urls.py mounts it."""

from django.urls import include, path

from mediation.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("api/", include("mediation.api.urls"))]

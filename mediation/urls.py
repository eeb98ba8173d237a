from django.contrib import admin
from django.urls import include, path

from mediation.core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("mediation.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("mediation.escalation.urls")),
    path("", include("mediation.web.urls")),
]

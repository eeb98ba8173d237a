"""Include from mediation/urls.py with: path("", include("mediation.escalation.urls")),"""

from django.urls import path

from mediation.escalation import views

app_name = "escalation"

urlpatterns = [
    path("health/", views.health, name="health"),
]

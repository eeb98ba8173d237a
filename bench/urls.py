"""The application's URLs plus the benchmark's floor endpoint (`bench.floor`)."""

from django.urls import path

from bench.floor import FloorTransitionView
from mediation.urls import urlpatterns as application

urlpatterns = [
    path("bench/floor/<int:pk>/<str:name>/", FloorTransitionView.as_view()),
    *application,
]

"""The benchmark's settings: the application's (`mediation.settings.base`, as the bench has
always run) with the floor endpoint's URLconf (`bench.urls`)."""

from mediation.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

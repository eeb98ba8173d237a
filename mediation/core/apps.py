from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mediation.core"
    label = "core"
    verbose_name = "核心"

    def ready(self) -> None:
        from mediation.core import checks  # noqa: F401  (registers the database-role check)

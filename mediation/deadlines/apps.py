from django.apps import AppConfig


class DeadlinesConfig(AppConfig):
    name = "mediation.deadlines"
    label = "deadlines"
    verbose_name = "法定期限"

    def ready(self) -> None:
        from mediation.deadlines import checks  # noqa: F401  (registers the calendar check)

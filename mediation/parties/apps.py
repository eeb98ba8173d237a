from django.apps import AppConfig


class PartiesConfig(AppConfig):
    name = "mediation.parties"
    label = "parties"
    verbose_name = "当事人"

    def ready(self) -> None:
        from mediation.parties import checks  # noqa: F401  (registers the key check)

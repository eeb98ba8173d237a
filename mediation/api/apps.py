from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API: its message catalogue (mediation/api/locale), the token revocation signals
    (mediation.api.tokens) and the schema's security scheme (mediation.api.authentication)."""

    name = "mediation.api"
    label = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from mediation.api import authentication, tokens

        tokens.connect_signals()
        del authentication  # imported for its OpenAPI extension (registered on import)

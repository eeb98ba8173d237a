from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "mediation.cases"
    label = "cases"
    verbose_name = "案件"

    def ready(self) -> None:
        from mediation.cases.lookup import lookup_code_of
        from mediation.notifications.services import register_sms_param

        # The 查询码 in a party's SMS is derived when the SMS goes out (never stored).
        register_sms_param("lookup_code", lookup_code_of)

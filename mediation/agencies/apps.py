from django.apps import AppConfig


class AgenciesConfig(AppConfig):
    name = "mediation.agencies"
    label = "agencies"
    verbose_name = "机构"

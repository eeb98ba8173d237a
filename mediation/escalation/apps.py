from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "mediation.escalation"
    label = "escalation"
    verbose_name = "超期督办"

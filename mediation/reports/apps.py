from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "mediation.reports"
    label = "reports"
    verbose_name = "统计分析"

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    """Server-rendered pages for township staff (登记、办理、移送、督办、统计)."""

    name = "mediation.web"
    label = "web"
    verbose_name = _("办理页面")

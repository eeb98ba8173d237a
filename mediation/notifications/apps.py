from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "mediation.notifications"
    label = "notifications"
    verbose_name = "通知"

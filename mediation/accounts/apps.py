from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mediation.accounts"
    label = "accounts"
    verbose_name = "用户"

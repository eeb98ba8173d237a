from django.apps import AppConfig


class PublicConfig(AppConfig):
    name = "mediation.public"
    label = "public"
    verbose_name = "群众端（网上申请、查询、评价）"

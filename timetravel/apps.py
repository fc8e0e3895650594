from django.apps import AppConfig


class TimetravelConfig(AppConfig):
    name = "timetravel"
    default_auto_field = "django.db.models.BigAutoField"

from django.urls import path

from . import views

app_name = "operations"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("alerts/", views.alert_list, name="alerts"),
    path("metrics", views.prometheus_metrics, name="metrics"),
    path("migrations/", views.migration_list, name="migrations"),
    path("migrations/<int:migration_id>/", views.migration_detail, name="migration_detail"),
    path("migrations/<int:migration_id>/resume/", views.migration_resume, name="migration_resume"),
]

from django.urls import path
from django.views.generic import RedirectView

from .views import audit, graphs, inbox, store, threads, timetravel

app_name = "timetravel"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="timetravel:thread_list"), name="home"),
    path("threads/", threads.thread_list, name="thread_list"),
    path("threads/<str:thread_id>/", threads.thread_detail, name="thread_detail"),
    path("threads/<str:thread_id>/delete/", timetravel.thread_delete, name="thread_delete"),
    path("threads/<str:thread_id>/checkpoints/<str:checkpoint_id>/fork/", timetravel.checkpoint_fork,
         name="checkpoint_fork"),
    path("threads/<str:thread_id>/checkpoints/<str:checkpoint_id>/replay/", timetravel.checkpoint_replay,
         name="checkpoint_replay"),
    path("threads/<str:thread_id>/interrupts/<str:interrupt_id>/", inbox.interrupt_decide, name="interrupt_decide"),
    path("threads/<str:thread_id>/interrupts/<str:interrupt_id>/claim/", inbox.interrupt_claim,
         name="interrupt_claim"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("audit/", audit.audit_log, name="audit_log"),
    path("graphs/", graphs.graph_list, name="graph_list"),
    path("store/", store.store_browser, name="store_browser"),
    path("store/item/", store.store_item, name="store_item"),
]
